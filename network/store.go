package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The store's files, under its folder (BERTH_ROOT/networks):
//
//	.lock                   flock'd around every change, by every process
//	<name>/network.json     the Network; its presence is the network's existence
//	<name>/leases.json      the network's leases, sorted by address
//
// Every file is replaced whole by a rename, so a reader sees the old
// content or the new one and needs no lock: the DNS server of each
// container reads leases.json on every query.
const (
	ipamLockFile    = ".lock"
	ipamNetworkFile = "network.json"
	ipamLeasesFile  = "leases.json"
)

// Store holds the networks and their address leases on this host, shared
// by every berth process. A Store is safe for concurrent use, and so are
// several Stores, in one process or many, on the same folder.
type Store struct {
	dir   string
	pools []Pool
	// routes returns the prefixes a picked subnet must avoid besides the
	// stored networks: HostRoutes, or a fixed list in tests.
	routes func() ([]netip.Prefix, error)
}

// Network is one network on the host, as recorded in the store.
type Network struct {
	Name     string            `json:"name"`    // host-wide name, as docker: "<project>_<net>" or an external name
	Project  string            `json:"project"` // the project that created it
	Bridge   string            `json:"bridge"`  // the Linux bridge's name
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
}

// OpenStore opens (creating it if needed) the store in dir. Networks
// created without a subnet get one from DefaultPools that overlaps no host
// route; see WithPools.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open network store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ipamLockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open network store: %w", err)
	}
	f.Close()
	return &Store{dir: dir, pools: DefaultPools(), routes: HostRoutes}, nil
}

// WithPools returns a Store on the same folder that picks subnets from
// pools (see ParsePools and PoolsEnv).
func (s *Store) WithPools(pools []Pool) (*Store, error) {
	if len(pools) == 0 {
		return nil, ipamErrorf(ErrInvalidPool, "address pools: no pool")
	}
	for _, p := range pools {
		if err := ipamCheckPool(p); err != nil {
			return nil, ipamErrorf(ErrInvalidPool, "address pool %s: %s", p, err)
		}
	}
	c := *s
	c.pools = slices.Clone(pools)
	return &c, nil
}

// Dir returns the store's folder.
func (s *Store) Dir() string { return s.dir }

// CreateNetwork records a new network. A zero Subnet is picked from the
// store's pools, clear of the other networks and of the host's routes; a
// zero Gateway becomes Gateway(Subnet); a zero Created becomes now. It
// returns ErrNetworkExists if the name is taken and ErrSubnetsOverlap,
// naming the other network, if the subnet overlaps one.
func (s *Store) CreateNetwork(n Network) (Network, error) {
	if err := ipamCheckName(n.Name); err != nil {
		return Network{}, err
	}
	var out Network
	err := s.locked(func() error {
		if _, err := s.Network(n.Name); err == nil {
			return ipamErrorf(ErrNetworkExists, "network %q already exists", n.Name)
		} else if !errors.Is(err, ErrNetworkNotFound) {
			return err
		}
		var err error
		out, err = s.create(n)
		return err
	})
	return out, err
}

// EnsureNetwork returns the network named n.Name, creating it as
// CreateNetwork would if it does not exist (created is then true). An
// existing network must match n where n says something: its Subnet and
// Gateway when set, and Internal; otherwise the error (ErrNetworkMismatch)
// says what differs. Use the returned Network, not n: it holds the subnet,
// gateway and bridge actually recorded.
func (s *Store) EnsureNetwork(n Network) (_ Network, created bool, _ error) {
	if err := ipamCheckName(n.Name); err != nil {
		return Network{}, false, err
	}
	var out Network
	err := s.locked(func() error {
		old, err := s.Network(n.Name)
		switch {
		case errors.Is(err, ErrNetworkNotFound):
			out, err = s.create(n)
			created = err == nil
			return err
		case err != nil:
			return err
		}
		var diff []string
		if n.Subnet.IsValid() && n.Subnet != old.Subnet {
			diff = append(diff, fmt.Sprintf("subnet %s, not %s", old.Subnet, n.Subnet))
		}
		if n.Gateway.IsValid() && n.Gateway != old.Gateway {
			diff = append(diff, fmt.Sprintf("gateway %s, not %s", old.Gateway, n.Gateway))
		}
		if n.Internal != old.Internal {
			diff = append(diff, fmt.Sprintf("internal %t, not %t", old.Internal, n.Internal))
		}
		if len(diff) > 0 {
			return ipamErrorf(ErrNetworkMismatch, "network %q exists with %s: remove it first (berth down) to change it",
				n.Name, strings.Join(diff, ", "))
		}
		out = old
		return nil
	})
	return out, created, err
}

// create records n, which does not exist; the store is locked.
func (s *Store) create(n Network) (Network, error) {
	n.Labels = maps.Clone(n.Labels)
	others, err := s.Networks()
	if err != nil {
		return Network{}, err
	}
	if !n.Subnet.IsValid() {
		taken := make([]netip.Prefix, 0, len(others))
		for _, o := range others {
			taken = append(taken, o.Subnet)
		}
		if s.routes != nil {
			routes, err := s.routes()
			if err != nil {
				return Network{}, fmt.Errorf("network %q: pick a subnet: %w", n.Name, err)
			}
			taken = append(taken, routes...)
		}
		if n.Subnet, err = PickSubnet(s.pools, taken); err != nil {
			return Network{}, fmt.Errorf("network %q: %w", n.Name, err)
		}
	}
	if err := ipamCheckSubnet(n.Name, n.Subnet); err != nil {
		return Network{}, err
	}
	if !n.Gateway.IsValid() {
		n.Gateway = Gateway(n.Subnet)
	}
	n.Gateway = n.Gateway.Unmap()
	if !n.Subnet.Contains(n.Gateway) {
		return Network{}, ipamErrorf(ErrAddressOutside, "gateway %s is outside the subnet %s of network %q", n.Gateway, n.Subnet, n.Name)
	}
	if r := ipamReserved(n.Subnet, netip.Addr{}, n.Gateway); r != "" {
		return Network{}, ipamErrorf(ErrAddressReserved, "gateway %s is the %s of the subnet %s of network %q", n.Gateway, r, n.Subnet, n.Name)
	}
	for _, o := range others {
		if Overlaps(n.Subnet, o.Subnet) {
			return Network{}, ipamErrorf(ErrSubnetsOverlap, "subnet %s of network %q overlaps the subnet %s of network %q",
				n.Subnet, n.Name, o.Subnet, o.Name)
		}
		if n.Bridge != "" && n.Bridge == o.Bridge {
			return Network{}, ipamErrorf(ErrNetworkExists, "network %q: bridge %q is already the bridge of network %q", n.Name, n.Bridge, o.Name)
		}
	}
	if n.Created.IsZero() {
		n.Created = time.Now().UTC()
	}
	// A folder without network.json is what a crash half-way through
	// create or remove leaves: nothing in it counts.
	dir := filepath.Join(s.dir, n.Name)
	if err := os.RemoveAll(dir); err != nil {
		return Network{}, fmt.Errorf("network %q: create: %w", n.Name, err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return Network{}, fmt.Errorf("network %q: create: %w", n.Name, err)
	}
	if err := ipamWriteJSON(filepath.Join(dir, ipamNetworkFile), n); err != nil {
		os.RemoveAll(dir)
		return Network{}, fmt.Errorf("network %q: create: %w", n.Name, err)
	}
	return n, nil
}

// Network returns the network named name, or ErrNetworkNotFound.
func (s *Store) Network(name string) (Network, error) {
	if err := ipamCheckName(name); err != nil {
		return Network{}, err
	}
	var n Network
	if err := ipamReadJSON(filepath.Join(s.dir, name, ipamNetworkFile), &n); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Network{}, ipamErrorf(ErrNetworkNotFound, "network %q not found", name)
		}
		return Network{}, fmt.Errorf("network %q: %w", name, err)
	}
	return n, nil
}

// Networks returns every network of the store, sorted by name.
func (s *Store) Networks() ([]Network, error) {
	names, err := s.networkNames()
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, name := range names {
		n, err := s.Network(name)
		if errors.Is(err, ErrNetworkNotFound) {
			continue // removed meanwhile, or a crash's leftover
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// networkNames returns the names of the network folders, sorted; some may
// have no network.json.
func (s *Store) networkNames() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ipamCheckName(e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// RemoveNetwork forgets the network named name; one that does not exist is
// no error. While containers hold leases on it, it refuses with
// ErrNetworkInUse, naming them.
func (s *Store) RemoveNetwork(name string) error {
	return s.RemoveUnusedNetwork(name, func(Lease) bool { return true })
}

// RemoveUnusedNetwork is RemoveNetwork where only the leases that held
// reports true for count: the others are leftovers (a container that a
// killed `up` leased an address for but never created), which go with the
// network. held is called with the store locked, so no lease can be taken
// between its answer and the removal; it must not call the Store. Removing
// writes nothing, so it works on a full disk.
func (s *Store) RemoveUnusedNetwork(name string, held func(Lease) bool) error {
	if err := ipamCheckName(name); err != nil {
		return err
	}
	return s.locked(func() error {
		dir := filepath.Join(s.dir, name)
		if _, err := s.Network(name); errors.Is(err, ErrNetworkNotFound) {
			// Gone, or what a crash half-way through create or remove
			// left: a folder without network.json, which counts for nothing.
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("network %q: remove: %w", name, err)
			}
			return nil
		}
		leases, err := s.readLeases(name)
		if err != nil {
			return err
		}
		var attached []string
		for _, l := range leases {
			if held(l) {
				attached = append(attached, fmt.Sprintf("%q", l.Container))
			}
		}
		if len(attached) > 0 {
			return ipamErrorf(ErrNetworkInUse, "network %q: remove: containers still attached: %s; stop or remove them first",
				name, strings.Join(attached, ", "))
		}
		// network.json first: once it is gone, the network is.
		if err := os.Remove(filepath.Join(dir, ipamNetworkFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("network %q: remove: %w", name, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("network %q: remove: %w", name, err)
		}
		return nil
	})
}

// locked runs fn with the store's lock held. The lock file is opened anew
// each time: flock belongs to an open file, so goroutines sharing one Store
// exclude each other as processes do.
func (s *Store) locked(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.dir, ipamLockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lock network store: %w", err)
	}
	defer f.Close() // releases the lock
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock network store: flock %s: %w", f.Name(), err)
	}
	return fn()
}

// ipamCheckName rejects a network name that is not
// [a-zA-Z0-9][a-zA-Z0-9_.-]*, so that none escapes the store's folder.
func ipamCheckName(name string) error {
	ok := name != "" && len(name) <= 255
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return ipamErrorf(ErrInvalidName, "invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-]* is allowed", name)
	}
	return nil
}

// ipamCheckSubnet rejects a subnet that is not a network address or has no
// room for a gateway and a container.
func ipamCheckSubnet(network string, p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return ipamErrorf(ErrInvalidSubnet, "network %q: no subnet", network)
	case p != p.Masked():
		return ipamErrorf(ErrInvalidSubnet, "network %q: subnet %s has host bits set (did you mean %s?)", network, p, p.Masked())
	case p.Addr().Is4In6():
		return ipamErrorf(ErrInvalidSubnet, "network %q: subnet %s: write it as IPv4", network, p)
	case p.Bits() > p.Addr().BitLen()-2:
		return ipamErrorf(ErrInvalidSubnet, "network %q: subnet %s is too small: it needs room for a gateway and a container (/%d at most)",
			network, p, p.Addr().BitLen()-2)
	}
	return nil
}

// ipamReadJSON decodes the file at path into v.
func ipamReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// ipamWriteJSON replaces the file at path with v as JSON, atomically: a
// temporary file in the same folder, synced, then renamed over it.
func ipamWriteJSON(path string, v any) (err error) {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// No fsync, as with the rest of berth's state: the rename makes a
	// reader see the old file or the new one whole, and what a power loss
	// might take back (a lease) the next up makes again. An fsync per
	// lease would be most of the cost of attaching a container.
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
