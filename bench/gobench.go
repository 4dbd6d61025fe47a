package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// GoBench is one result line of `go test -bench`.
type GoBench struct {
	// Name is without the "Benchmark" prefix and the -GOMAXPROCS suffix:
	// "Append/batch=100".
	Name    string
	Procs   int
	N       int64
	Metrics map[string]float64 // by unit: "ns/op", "events/s", "allocs/op", ...
}

// ParseGoBench reads `go test -bench` output (benchstat's format).
func ParseGoBench(r io.Reader) ([]GoBench, error) {
	var out []GoBench
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := GoBench{Name: strings.TrimPrefix(f[0], "Benchmark"), Procs: 1, N: n, Metrics: map[string]float64{}}
		if i := strings.LastIndexByte(b.Name, '-'); i > 0 {
			if p, err := strconv.Atoi(b.Name[i+1:]); err == nil {
				b.Name, b.Procs = b.Name[:i], p
			}
		}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			b.Metrics[f[i+1]] = v
		}
		if ok {
			out = append(out, b)
		}
	}
	return out, sc.Err()
}

// Median returns the median of metric unit over the results named name
// (one per -count), and how many there were.
func Median(rs []GoBench, name, unit string) (float64, int) {
	var vs []float64
	for _, r := range rs {
		if v, ok := r.Metrics[unit]; ok && r.Name == name {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0, 0
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2], len(vs)
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2, len(vs)
}

// Names returns the distinct benchmark names in order of appearance.
func Names(rs []GoBench) []string {
	var names []string
	for _, r := range rs {
		if !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names
}

// RunGoBench runs `go test args...` in dir, streaming its output to
// progress (may be nil), and returns the raw output and the parsed
// results together with the command line.
func RunGoBench(ctx context.Context, dir string, progress io.Writer, args ...string) (raw string, rs []GoBench, command string, err error) {
	args = append([]string{"test"}, args...)
	command = shellJoin(append([]string{"go"}, args...))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if progress != nil {
		w = io.MultiWriter(&buf, progress)
	}
	cmd.Stdout, cmd.Stderr = w, w
	runErr := cmd.Run()
	rs, perr := ParseGoBench(bytes.NewReader(buf.Bytes()))
	if runErr != nil {
		return buf.String(), rs, command, fmt.Errorf("bench: %s: %w", command, runErr)
	}
	return buf.String(), rs, command, perr
}
