package catalog

import (
	"github.com/segflow/segflow/infra/s3iam"
	"github.com/segflow/segflow/shared/layout"
)

// StorageGrant is what the catalog needs of the bucket: to list and read
// the assets it indexes. It writes nothing there.
func StorageGrant() s3iam.Grant {
	return s3iam.Grant{Read: []string{layout.AssetsPrefix + "*"}}
}
