package mediatest

import (
	"fmt"

	"github.com/segflow/segflow/shared/media"
)

// Kind is a named kind of picture.
type Kind struct {
	Name string
	Clip Clip
}

// ContentKinds are the pictures a content-aware ladder is judged on,
// from easy to hopeless: a slide deck (flat colours and text that changes
// every 4 s), a talking head (a still, detailed background, a moving
// figure over a quarter of it) and noisy high motion (testsrc2 under
// strong temporal grain: sport on film stock).
// Their size is width x height, at 30 frames a second (the Clip's FPS
// left at its default); the length is the caller's.
func ContentKinds(width, height int) []Kind {
	const font = media.DefaultFont
	return []Kind{
		{"slides", Clip{Source: "color=c=0xf4f4f4", VideoFilter: "drawbox=x=0:y=0:w=iw:h=ih/8:color=0x1f4e79:t=fill," +
			"drawtext=fontfile=" + font + ":text='Quarterly review %{eif\\:1+floor(t/4)\\:d}':fontsize=h/14:fontcolor=white:x=w/20:y=h/32," +
			"drawtext=fontfile=" + font + ":text='Revenue up in every region %{eif\\:10+floor(t/4)\\:d} pct':fontsize=h/20:fontcolor=0x202020:x=w/12:y=h/4," +
			"drawbox=x=iw/12:y=ih/2:w=iw/3:h=ih/3:color=0xc0504d:t=fill"}},
		{"talking-head", Clip{VideoFilter: fmt.Sprintf("crop=%[1]d:%[2]d:%[3]d:%[4]d[head];"+
			"mandelbrot=size=%[5]dx%[6]d:rate=30,trim=end_frame=1,loop=loop=-1:size=1,setpts=N/30/TB[bg];"+
			"[bg][head]overlay=x=%[3]d+%[7]d*sin(t*1.3):y=%[4]d+%[8]d*sin(t*0.7):shortest=1",
			width/4, height*3/5, width*3/8, height/5, width, height, width/24, height/36)}},
		{"noisy-motion", Clip{VideoFilter: "noise=alls=25:allf=t+u"}},
	}
}
