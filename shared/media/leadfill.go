package media

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// leadFill is the filter that shows a segment's first keyframe in place of
// the frames before it that cannot be decoded ("" when there are none).
//
// Open GOPs (x265's default, and common in MPEG-2 broadcast files) start
// a GOP with a CRA or open I-frame followed in decode order by B-frames
// that are shown before it and refer to the GOP before. A cut made by
// stream copy at that keyframe leaves those frames at the head of the next
// segment, where the decoder must drop them: without a fill the
// renditions would miss a frame or more at every seam, their timestamps
// jumping and their frame counts short. The keyframe repeated over them
// is what a player shows for the gap anyway, and keeps every rung at a
// constant rate with the seam where the segment list says it is.
// Closed-GOP sources have their keyframe first in display order too, and
// get no filter.
func leadFill(ctx context.Context, in string, fps float64) (string, error) {
	sp, err := fileSpan(ctx, in, "v:0", 0)
	if err != nil {
		return "", err
	}
	n := int(math.Round((sp.key - sp.start) * fps))
	if n < 1 || fps <= 0 {
		return "", nil
	}
	// tpad puts its n clones at 0, 1/FR, ... and moves every decoded frame
	// on by n frames; setpts takes the clones to the segment's start and
	// the decoded frames back to their own times (-copyts keeps them well
	// above n frames).
	return fmt.Sprintf("tpad=start=%d:start_mode=clone,setpts='if(lt(PTS,(%d-0.5)/FR/TB),%s/TB+PTS,PTS-%d/FR/TB)'",
		n, n, strconv.FormatFloat(sp.start, 'f', 6, 64), n), nil
}

// withLeadFill puts the lead fill of segment in ahead of filter.
func withLeadFill(ctx context.Context, in string, fps float64, filter string) (string, error) {
	fill, err := leadFill(ctx, in, fps)
	if err != nil || fill == "" {
		return filter, err
	}
	return strings.Trim(fill+","+filter, ","), nil
}
