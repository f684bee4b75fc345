package procfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// statLine builds a /proc/PID/stat line with the given ppid and CPU times.
func statLine(pid int, comm string, ppid int, utime, stime, cutime, cstime int64) string {
	f := []string{strconv.Itoa(pid), "(" + comm + ")", "S", strconv.Itoa(ppid)}
	for i := 5; i <= 52; i++ {
		v := "0"
		switch i {
		case 14:
			v = strconv.FormatInt(utime, 10)
		case 15:
			v = strconv.FormatInt(stime, 10)
		case 16:
			v = strconv.FormatInt(cutime, 10)
		case 17:
			v = strconv.FormatInt(cstime, 10)
		case 39:
			v = "1"
		}
		f = append(f, v)
	}
	out := f[0]
	for _, x := range f[1:] {
		out += " " + x
	}
	return out + "\n"
}

func fakeProc(t *testing.T) FS {
	t.Helper()
	root := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 100 (nginx master) -> 101 (worker) -> 103; 102 is unrelated; 104 is a zombie child of 100.
	write("100/stat", statLine(100, "nginx: master", 1, 5, 5, 0, 0))
	write("100/status", "Name:\tnginx\nVmRSS:\t    1000 kB\n")
	write("101/stat", statLine(101, "nginx: worker ) (x", 100, 200, 100, 0, 0))
	write("101/status", "Name:\tnginx\nVmRSS:\t    3000 kB\n")
	write("103/stat", statLine(103, "helper", 101, 1, 1, 0, 0))
	write("103/status", "VmRSS:\t 24 kB\n")
	write("102/stat", statLine(102, "other", 1, 999, 999, 0, 0))
	write("102/status", "VmRSS:\t 99999 kB\n")
	write("104/stat", statLine(104, "zombie", 100, 0, 0, 0, 0))
	write("104/status", "Name:\tzombie\nState:\tZ (zombie)\n")
	write("stat", "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 7 1 3 50 9 4 4 2 0 0\ncpu1 3 0 7 50 0 0 0 0 0 0\nintr 1 2 3\n")
	return New(root)
}

func TestTreeSumsDescendantsOnly(t *testing.T) {
	fs := fakeProc(t)
	pids, err := fs.Tree(100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{100, 101, 104, 103}; !slices.Equal(pids, want) {
		t.Fatalf("Tree(100) = %v, want %v", pids, want)
	}
	rss, err := fs.TreeRSSKB(100)
	if err != nil {
		t.Fatal(err)
	}
	if rss != 4024 {
		t.Fatalf("TreeRSSKB = %d, want 4024 (master + worker + helper, zombie has none)", rss)
	}
	cpu, err := fs.TreeCPUTicks(100)
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 312 {
		t.Fatalf("TreeCPUTicks = %d, want 312", cpu)
	}
}

func TestMissingProcess(t *testing.T) {
	fs := fakeProc(t)
	if _, err := fs.RSSKB(4242); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("RSSKB(missing) err = %v, want ErrNoProcess", err)
	}
	if _, err := fs.TreeRSSKB(4242); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("TreeRSSKB(missing) err = %v, want ErrNoProcess", err)
	}
	if _, err := fs.RSSKB(104); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("RSSKB(zombie) err = %v, want ErrNoProcess", err)
	}
}

func TestCPUBusyLeavesOutIdleAndInterrupts(t *testing.T) {
	busy, err := fakeProc(t).CPUBusy()
	if err != nil {
		t.Fatal(err)
	}
	// cpu0: user 7 + nice 1 + system 3 + steal 2; idle, iowait, irq and softirq excluded.
	if busy[0] != 13 || busy[1] != 10 || len(busy) != 2 {
		t.Fatalf("CPUBusy = %v, want map[0:13 1:10]", busy)
	}
}

func TestParseStatRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "1 (x", "1 (x) S 1 2 3", "1 (x) S z" + statLine(1, "x", 1, 0, 0, 0, 0)[9:]} {
		if _, err := parseStat([]byte(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("parseStat(%q) err = %v, want ErrFormat", in, err)
		}
	}
}

func TestLiveProcess(t *testing.T) {
	fs := Proc()
	rss, err := fs.RSSKB(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("RSSKB(self) = %d, %v", rss, err)
	}
	child := exec.Command("sleep", "10")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	pids, err := fs.Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, child.Process.Pid) {
		t.Fatalf("Tree(self) = %v, missing child %d", pids, child.Process.Pid)
	}
	busy, err := fs.CPUBusy()
	if err != nil || len(busy) == 0 {
		t.Fatalf("CPUBusy = %v, %v", busy, err)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(1, "a b) (c", 0, 1, 2, 3, 4)))
	f.Add([]byte("1 (x) S"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any input: no panic, and success only for a line with a closing parenthesis
		// followed by enough numeric fields.
		if _, err := parseStat(b); err == nil && !bytes.Contains(b, []byte(")")) {
			t.Fatalf("parsed %q without a command name", b)
		}
	})
}
