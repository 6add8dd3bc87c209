package console

import (
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/layout"
)

// StorageGrant is all the console does in the bucket: put uploads (its
// presigned part URLs included) and its claims on their keys, and read
// what an asset's page shows. It reads no rendition and writes no asset.
func StorageGrant() s3iam.Grant {
	asset := layout.AssetsPrefix + "*/"
	return s3iam.Grant{
		Read: []string{layout.UploadsPrefix + "*", reservedPrefix + "*",
			asset + "status.json", asset + "manifest.json", asset + "tags/*", asset + "thumbs/poster.jpg"},
		Write: []string{layout.UploadsPrefix + "*", reservedPrefix + "*"},
	}
}
