// Package procfs reads the few Linux /proc figures the benchmark harness reports: a process
// tree's resident memory (VmRSS) and CPU time, and the machine's per-CPU busy time.
//
// Who may call it: the benchmarks/ harness and its meters only. It is Linux-specific and reads
// /proc (or another root given to New, for tests).
package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoProcess is returned when a PID has no /proc entry (it exited or never existed).
var ErrNoProcess = errors.New("procfs: no such process")

// ErrFormat is returned when a /proc file does not have the expected shape.
var ErrFormat = errors.New("procfs: unexpected format")

// UserHZ is the unit of CPU times in /proc/PID/stat and /proc/stat on Linux (USER_HZ).
const UserHZ = 100

// FS reads one /proc tree.
type FS struct {
	root string
}

// New returns an FS rooted at root ("/proc" on a live system).
func New(root string) FS { return FS{root: root} }

// Proc is the live system's /proc.
func Proc() FS { return New("/proc") }

// RSSKB returns VmRSS of pid in KiB.
func (fs FS) RSSKB(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join(fs.root, strconv.Itoa(pid), "status"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
		}
		return 0, fmt.Errorf("procfs: read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("pid %d: VmRSS line %q: %w", pid, line, ErrFormat)
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d: VmRSS %q: %w", pid, f[0], ErrFormat)
		}
		return v, nil
	}
	// Kernel threads and zombies have no VmRSS line.
	return 0, fmt.Errorf("pid %d: no VmRSS (zombie?): %w", pid, ErrNoProcess)
}

// stat is the part of /proc/PID/stat the harness uses.
type stat struct {
	ppid       int
	utime      int64
	stime      int64
	cutime     int64
	cstime     int64
	processors int
}

func (fs FS) stat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join(fs.root, strconv.Itoa(pid), "stat"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return stat{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
		}
		return stat{}, fmt.Errorf("procfs: read stat of %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses /proc/PID/stat. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("stat %q: %w", b, ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field N is f[N-3].
	if len(f) < 39-3+1 {
		return stat{}, fmt.Errorf("stat has %d fields: %w", len(f)+2, ErrFormat)
	}
	num := func(field int) (int64, error) {
		v, err := strconv.ParseInt(f[field-3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %d %q: %w", field, f[field-3], ErrFormat)
		}
		return v, nil
	}
	var s stat
	var vals [6]int64
	for k, field := range []int{4, 14, 15, 16, 17, 39} {
		v, err := num(field)
		if err != nil {
			return stat{}, err
		}
		vals[k] = v
	}
	s.ppid, s.utime, s.stime, s.cutime, s.cstime, s.processors =
		int(vals[0]), vals[1], vals[2], vals[3], vals[4], int(vals[5])
	return s, nil
}

// Tree returns pid followed by all its live descendants, found by scanning every process's
// parent PID. It fails only if pid itself is gone.
func (fs FS) Tree(pid int) ([]int, error) {
	if _, err := fs.stat(pid); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(fs.root)
	if err != nil {
		return nil, fmt.Errorf("procfs: list %s: %w", fs.root, err)
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := fs.stat(p)
		if err != nil {
			continue // exited while scanning
		}
		children[s.ppid] = append(children[s.ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		kids := children[out[i]]
		sort.Ints(kids)
		out = append(out, kids...)
	}
	return out, nil
}

// TreeRSSKB sums VmRSS over pid and its descendants, in KiB.
func (fs FS) TreeRSSKB(pid int) (int64, error) {
	pids, err := fs.Tree(pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for i, p := range pids {
		v, err := fs.RSSKB(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue // a descendant that just exited
		}
		sum += v
	}
	return sum, nil
}

// TreeCPUTicks sums user+system CPU time (in UserHZ ticks) of pid and its live descendants,
// including what their reaped children used.
func (fs FS) TreeCPUTicks(pid int) (int64, error) {
	pids, err := fs.Tree(pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for i, p := range pids {
		s, err := fs.stat(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		sum += s.utime + s.stime + s.cutime + s.cstime
	}
	return sum, nil
}

// CPUBusy returns, per CPU number, the ticks spent running tasks (user, nice, system and steal)
// from /proc/stat. Interrupt and softirq time are left out: the kernel does not charge them to
// any process, and on loopback they are mostly the traffic the benchmark itself makes.
func (fs FS) CPUBusy() (map[int]int64, error) {
	f, err := os.Open(filepath.Join(fs.root, "stat"))
	if err != nil {
		return nil, fmt.Errorf("procfs: open stat: %w", err)
	}
	defer f.Close()
	out := map[int]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cpu") || strings.HasPrefix(line, "cpu ") {
			continue
		}
		fl := strings.Fields(line)
		n, err := strconv.Atoi(strings.TrimPrefix(fl[0], "cpu"))
		if err != nil || len(fl) < 8 {
			return nil, fmt.Errorf("stat line %q: %w", line, ErrFormat)
		}
		var busy int64
		// user nice system idle iowait irq softirq steal [guest guest_nice, already in user]
		for k, v := range fl[1:] {
			if k >= 8 {
				break
			}
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("stat line %q: %w", line, ErrFormat)
			}
			if k >= 3 && k <= 6 {
				continue // idle, iowait, irq, softirq
			}
			busy += x
		}
		out[n] = busy
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("procfs: read stat: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cpuN lines in stat: %w", ErrFormat)
	}
	return out, nil
}
