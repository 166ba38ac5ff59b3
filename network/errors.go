package network

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinels of address management and the network store. Compare with
// errors.Is; the errors returned carry a message naming the network, the
// container or the address, and unwrap to one of these.
var (
	ErrNetworkNotFound = errors.New("network not found")
	ErrNetworkExists   = errors.New("network already exists")
	// ErrNetworkMismatch: a network of that name exists with another
	// configuration (subnet, gateway, internal) than the one asked for.
	ErrNetworkMismatch = errors.New("network exists with another configuration")
	// ErrNetworkInUse: containers still hold leases on the network.
	ErrNetworkInUse = errors.New("network has containers attached")
	ErrInvalidName  = errors.New("invalid network name")

	ErrInvalidSubnet  = errors.New("invalid subnet")
	ErrInvalidPool    = errors.New("invalid address pool")
	ErrSubnetsOverlap = errors.New("subnets overlap")
	ErrNoFreeSubnet   = errors.New("no free subnet in the address pools")

	ErrAddressOutside = errors.New("address outside the subnet")
	// ErrAddressReserved: the network address, the broadcast address or the
	// gateway, which no container can have.
	ErrAddressReserved = errors.New("address reserved")
	ErrAddressInUse    = errors.New("address in use")
	ErrNoFreeAddress   = errors.New("no free address")
)

// ipamError is an error whose message is written whole for the user and
// which unwraps to a sentinel that does not repeat itself in that message.
type ipamError struct {
	msg string
	err error
}

func (e *ipamError) Error() string { return e.msg }
func (e *ipamError) Unwrap() error { return e.err }

// ipamErrorf returns an error reading format (which may use %w for a cause)
// that also matches sentinel under errors.Is.
func ipamErrorf(sentinel error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if cause := errors.Unwrap(err); cause != nil {
		return &ipamError{msg: err.Error(), err: errors.Join(sentinel, cause)}
	}
	return &ipamError{msg: err.Error(), err: sentinel}
}

// AddressError is an address that a network cannot give a container. It
// unwraps to ErrAddressOutside, ErrAddressReserved or ErrAddressInUse.
type AddressError struct {
	Network string       // the network's name; empty when not known
	Subnet  netip.Prefix // its subnet
	Addr    netip.Addr   // the address asked for
	Err     error        // the sentinel
	Reason  string       // for ErrAddressReserved: "network address", "broadcast address" or "gateway"
	Holder  string       // for ErrAddressInUse: the container that has it
}

func (e *AddressError) Error() string {
	field := "ipv4_address"
	if e.Addr.Is6() {
		field = "ipv6_address"
	}
	where := fmt.Sprintf("the subnet %s", e.Subnet)
	if e.Network != "" {
		where += fmt.Sprintf(" of network %q", e.Network)
	}
	switch {
	case errors.Is(e.Err, ErrAddressOutside):
		if !e.Addr.IsValid() {
			return fmt.Sprintf("%s is not a valid address for %s", field, where)
		}
		return fmt.Sprintf("%s %s is outside %s", field, e.Addr, where)
	case errors.Is(e.Err, ErrAddressReserved):
		return fmt.Sprintf("%s %s is the %s of %s", field, e.Addr, e.Reason, where)
	case errors.Is(e.Err, ErrAddressInUse) && e.Network != "":
		return fmt.Sprintf("%s %s on network %q is in use by container %q", field, e.Addr, e.Network, e.Holder)
	case errors.Is(e.Err, ErrAddressInUse):
		return fmt.Sprintf("%s %s of %s is in use by container %q", field, e.Addr, where, e.Holder)
	}
	return fmt.Sprintf("%s %s of %s: %v", field, e.Addr, where, e.Err)
}

func (e *AddressError) Unwrap() error { return e.Err }
