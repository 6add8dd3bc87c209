package mediatest

import (
	"os"
	"sort"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"
)

// FragmentedPackets lists the video samples of a fragmented MP4 (init
// segment then media segments) in presentation order, with the times ISO
// BMFF gives them, as players' MSE read them: the fragment's decode time
// plus the sample's composition offset. ffmpeg's mov demuxer differs when
// an offset is negative (it delays every pts by the most negative one), so
// tests compare the two.
func FragmentedPackets(t testing.TB, path string) []Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := mp4.DecodeFile(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if parsed.Init == nil {
		t.Fatalf("%s: no init segment", path)
	}
	timescale := float64(parsed.Init.Moov.Trak.Mdia.Mdhd.Timescale)
	var trex *mp4.TrexBox
	if mv := parsed.Init.Moov.Mvex; mv != nil {
		trex = mv.Trex
	}
	var ps []Packet
	for _, seg := range parsed.Segments {
		for _, fr := range seg.Fragments {
			samples, err := fr.GetFullSamples(trex)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, s := range samples {
				pts := float64(int64(s.DecodeTime)+int64(s.CompositionTimeOffset)) / timescale
				ps = append(ps, Packet{PTS: pts, Duration: float64(s.Dur) / timescale, Key: s.IsSync()})
			}
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].PTS < ps[j].PTS })
	return ps
}
