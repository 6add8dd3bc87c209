package e2e

import "strconv"

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }
