package e2e

import (
	"strconv"

	"github.com/segflow/segflow/shared/layout"
	"github.com/segflow/segflow/shared/storage"
)

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func layoutID(key, etag string) string { return layout.AssetID(key, etag) }

func storageListTop() storage.ListOptions { return storage.ListOptions{} }
