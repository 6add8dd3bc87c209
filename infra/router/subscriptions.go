package router

import (
	"context"
	"sort"
	"strconv"
	"strings"
)

// Refresh reads the functions and their topic annotations from the gateway,
// as OpenFaaS connectors do, and starts or stops delivery workers to match.
func (r *Router) Refresh(ctx context.Context) error {
	fns, err := r.cfg.Gateway.List(ctx)
	if err != nil {
		return err
	}
	subs := map[string][]string{}
	cfgs := map[string]fnConfig{}
	for _, f := range fns {
		if f.Annotations == nil {
			continue
		}
		ann := *f.Annotations
		topics := strings.Split(ann[AnnotationTopic], ",")
		any := false
		for _, t := range topics {
			if t = strings.TrimSpace(t); t != "" {
				subs[t] = append(subs[t], f.Name)
				any = true
			}
		}
		if any {
			cfgs[f.Name] = fnConfig{
				maxAttempts: annInt(ann, AnnotationMaxAttempts, r.cfg.MaxAttempts),
				concurrency: annInt(ann, AnnotationConcurrency, r.cfg.Concurrency),
			}
		}
	}
	for _, v := range subs {
		sort.Strings(v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs, r.fnCfg, r.loaded = subs, cfgs, true
	for name, c := range cfgs {
		w := r.workers[name]
		if w != nil && w.cfg == c {
			continue
		}
		if w != nil {
			w.stop()
		}
		nw, err := r.startWorkers(ctx, name, c)
		if err != nil {
			return err
		}
		r.workers[name] = nw
	}
	for name, w := range r.workers {
		if _, ok := cfgs[name]; !ok {
			w.stop()
			delete(r.workers, name)
			r.log.Info("router: stopped delivering", "function", name)
		}
	}
	return nil
}

func annInt(ann map[string]string, key string, def int) int {
	if n, err := strconv.Atoi(ann[key]); err == nil && n > 0 {
		return n
	}
	return def
}
