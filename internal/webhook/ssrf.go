package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused wraps every refusal of a destination address by the outbound
// policy (see the package doc, "Outbound safety").
var ErrRefused = errors.New("webhook: destination refused")

// metadataAddrs are cloud metadata endpoints outside the link-local
// ranges (which are refused as a whole): AWS's IPv6 endpoint and
// Alibaba's, which sits in shared address space (100.64.0.0/10) that is
// otherwise allowed.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// metadataNames are host names of metadata services; refused by name at
// creation (at connect time their addresses are link-local anyway).
var metadataNames = []string{"metadata.google.internal", "metadata.goog", "metadata"}

// nat64 is the well-known NAT64 prefix (RFC 6052): an IPv6 address in it
// reaches the IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// policy decides which destination addresses deliveries may reach.
type policy struct {
	allowLoopback bool
}

// loopbackHint tells an operator how to allow loopback receivers.
const loopbackHint = " (set SECUREVISION__WEBHOOKS__ALLOW_LOOPBACK=true to allow it)"

// checkAddr returns nil when a may be dialled, else an error wrapping
// ErrRefused that says why.
func (p policy) checkAddr(a netip.Addr) error {
	a = a.Unmap()
	if a.Is6() && (nat64.Contains(a) || isV4Compatible(a)) {
		// The IPv4 address embedded in a translation prefix is the one
		// reached: check it instead.
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	why := ""
	switch {
	case !a.IsValid():
		why = "not an IP address"
	case a.IsUnspecified() || a.Is4() && a.As4()[0] == 0:
		why = "unspecified"
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		why = "broadcast"
	case a.IsMulticast():
		why = "multicast"
	case a.IsLinkLocalUnicast():
		why = "link-local (cloud metadata lives there)"
	case isMetadata(a):
		why = "a cloud metadata address"
	case a.IsLoopback() && !p.allowLoopback:
		why = "loopback" + loopbackHint
	}
	if why != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, a, why)
	}
	return nil
}

func isV4Compatible(a netip.Addr) bool {
	b := a.As16()
	for _, x := range b[:12] {
		if x != 0 {
			return false
		}
	}
	// ::, ::1 are themselves (unspecified, loopback), not IPv4 addresses.
	return b[12]|b[13] != 0
}

func isMetadata(a netip.Addr) bool {
	for _, m := range metadataAddrs {
		if a == m {
			return true
		}
	}
	return false
}

// lookupFunc resolves a host name; tests replace it to play a DNS answer
// that changes between creation and connection.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func systemLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// createLookupTimeout bounds the DNS look-up of a new webhook's host: the
// API answers within it even when DNS does not.
const createLookupTimeout = 3 * time.Second

// checkURL is the creation-time check of a webhook URL's host: an IP
// literal is checked as it is; a host name is refused when it names
// loopback (localhost) or a metadata service, else it is resolved and
// every address it has now is checked. A name that does not resolve is
// accepted: the connect-time check still guards every connection.
func (p policy) checkURL(ctx context.Context, u *url.URL, lookup lookupFunc) error {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(a)
	}
	for _, n := range metadataNames {
		if host == n {
			return fmt.Errorf("%w: %s is a cloud metadata service", ErrRefused, host)
		}
	}
	if (host == "localhost" || strings.HasSuffix(host, ".localhost")) && !p.allowLoopback {
		return fmt.Errorf("%w: %s is loopback%s", ErrRefused, host, loopbackHint)
	}
	ctx, cancel := context.WithTimeout(ctx, createLookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if err := p.checkAddr(a); err != nil {
			return fmt.Errorf("%s resolves to %w", host, err)
		}
	}
	return nil
}

// control is the dialer's Control hook: it runs after DNS resolution, on
// every address the dialer is about to connect to, so it sees the address
// the request actually goes to.
func (p policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrRefused, address)
	}
	return p.checkAddr(ap.Addr())
}
