package e2e

import (
	"strconv"

	"github.com/segflow/segflow/shared/layout"
)

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func layoutID(key, etag string) string { return layout.AssetID(key, etag) }
