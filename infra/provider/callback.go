package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// CallbackPolicy says where async results may be posted. X-Callback-Url is
// the caller's choice, and a gateway that posted anywhere would let anyone
// who can queue a call reach what only this machine can: its loopback
// services, the cloud metadata address, the private network. So a callback
// goes to a host on Hosts, or else only to public addresses, checked when
// the call is queued and again on every connection (a name that resolves
// to a public address at queue time and to a private one later is refused
// then).
type CallbackPolicy struct {
	// Hosts are host names or addresses (no port) trusted as callback
	// targets whatever they resolve to.
	Hosts []string
}

var errCallbackRefused = errors.New("callback refused")

// Check refuses a callback URL that is not http(s) or not allowed.
func (p CallbackPolicy) Check(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%w: %q is not an http(s) URL", errCallbackRefused, raw)
	}
	host := u.Hostname()
	if p.allowed(host) {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkPublic(host, ip)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: %s does not resolve: %v", errCallbackRefused, host, err)
	}
	for _, ip := range addrs {
		if err := checkPublic(host, ip); err != nil {
			return err
		}
	}
	return nil
}

func (p CallbackPolicy) allowed(host string) bool {
	return slices.ContainsFunc(p.Hosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// checkPublic refuses loopback, private, link-local, shared (CGNAT),
// unspecified and multicast addresses.
func checkPublic(host string, ip netip.Addr) error {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() || cgnat.Contains(ip) {
		return fmt.Errorf("%w: %s is %s, not a public address; allow it with --callback-host", errCallbackRefused, host, ip)
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// client posts to allowed hosts freely and to any other host only over
// connections to public addresses.
func (p CallbackPolicy) client(timeout time.Duration) func(rawURL string) *http.Client {
	open := &http.Client{Timeout: timeout}
	guarded := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: dial %s: %v", errCallbackRefused, address, err)
			}
			return checkPublic(address, ap.Addr())
		}}).DialContext,
		// Redirects are followed by the client; each new connection is
		// checked by the same dialer.
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	return func(rawURL string) *http.Client {
		if u, err := url.Parse(rawURL); err == nil && p.allowed(u.Hostname()) {
			return open
		}
		return guarded
	}
}
