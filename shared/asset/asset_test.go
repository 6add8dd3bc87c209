package asset

import (
	"errors"
	"testing"
)

func TestOptionalStagesDoNotFailTheAsset(t *testing.T) {
	tests := []struct {
		stage string
		want  string
	}{
		{"aitag", StateProcessing},
		{"thumbnail", StateProcessing},
		{"qa", StateProcessing},
		{"transcode", StateFailed},
		{"watermark", StateFailed},
	}
	for _, tc := range tests {
		s := &Status{State: StateProcessing, Stages: map[string]StageStatus{}}
		s.SetSegment(3, tc.stage, StateFailed, errors.New("no video stream"))
		if s.State != tc.want {
			t.Errorf("%s failing left the asset %s, want %s", tc.stage, s.State, tc.want)
		}
		if got := s.Segments[0].Stages[tc.stage]; got.State != StateFailed || got.Error != "no video stream" {
			t.Errorf("%s: segment stage %+v", tc.stage, got)
		}
	}
	s := &Status{State: StateProcessing, Stages: map[string]StageStatus{}}
	for _, n := range []int{4, 1, 3} {
		s.SetSegment(n, "split", StateDone, nil)
	}
	if len(s.Segments) != 3 || s.Segments[0].Index != 1 || s.Segments[2].Index != 4 {
		t.Fatalf("segments not kept in order: %+v", s.Segments)
	}
}
