package media

import (
	"cmp"
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// Protection encrypts fMP4 renditions with Common Encryption's cbcs
// scheme (ISO/IEC 23001-7): the samples' payload in 1-in-10 AES-CBC
// blocks with one constant IV, NAL and slice headers left clear, so the
// segments stay parseable (and their byte ranges, I-frame playlists
// included, stay valid) while only a player holding the key decodes them.
// mp4ff does the sample work; it knows H.264 and AAC, which is what a
// CMAF ladder carries.
type Protection struct {
	Key   []byte // the 16-byte content key
	KeyID []byte // its 16-byte ID, in tenc and the pssh
	IV    []byte // the 16-byte constant IV
}

// Protectable says whether cbcs can protect rung r: fMP4 H.264 only
// (mp4ff protects H.264 and AAC samples, not HEVC, VP9 or AV1 yet).
func (r Rung) Protectable() error {
	if r.Container() != "fmp4" || r.Codec != H264 && r.Codec != "" {
		return fmt.Errorf("cbcs protects H.264 CMAF renditions, and %s is %s in %s", r.Name, cmp.Or(r.Codec, H264), r.Container())
	}
	return nil
}

// commonSystemID is the W3C common PSSH system ID
// (1077efec-c0b2-4d02-ace3-3c1e52e2fb4b): a pssh under it lists the key
// IDs, which is the "cenc" init data a browser's Clear Key CDM reads.
var commonSystemID = mp4.UUID{0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b}

// apply protects a parsed fragmented MP4 in place: its init segment gains
// the encv/enca sample entry, sinf (cbcs, tenc with the key ID and IV) and
// a common pssh; every fragment's samples are encrypted and described
// (senc, saiz, saio).
func (p *Protection) apply(f *mp4.File) error {
	if len(p.Key) != 16 || len(p.KeyID) != 16 || len(p.IV) != 16 {
		return fmt.Errorf("cbcs: key, key ID and IV must be 16 bytes each")
	}
	// mp4ff ends the process (log.Fatal) on parameter sets it cannot
	// parse: they are checked here first, so a bad one fails the segment.
	if v := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.AvcX; v != nil && v.AvcC != nil {
		sps := map[uint32]*avc.SPS{}
		for _, n := range v.AvcC.SPSnalus {
			s, err := avc.ParseSPSNALUnit(n, false)
			if err != nil {
				return fmt.Errorf("cbcs init: SPS: %w", err)
			}
			sps[s.ParameterID] = s
		}
		for _, n := range v.AvcC.PPSnalus {
			if _, err := avc.ParsePPSNALUnit(n, sps); err != nil {
				return fmt.Errorf("cbcs init: PPS: %w", err)
			}
		}
	}
	pssh := &mp4.PsshBox{Version: 1, SystemID: commonSystemID, KIDs: []mp4.UUID{p.KeyID}}
	ipd, err := mp4.InitProtect(f.Init, p.Key, p.IV, "cbcs", p.KeyID, []*mp4.PsshBox{pssh})
	if err != nil {
		return fmt.Errorf("cbcs init: %w", err)
	}
	for _, seg := range f.Segments {
		for _, fr := range seg.Fragments {
			if err := mp4.EncryptFragment(fr, p.Key, p.IV, ipd); err != nil {
				return fmt.Errorf("cbcs fragment: %w", err)
			}
		}
	}
	return nil
}
