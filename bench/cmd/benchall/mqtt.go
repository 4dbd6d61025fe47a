package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/securevision/events/bench"
	"github.com/securevision/events/eventlog"
	"github.com/securevision/events/internal/core"
	"github.com/securevision/events/internal/mqtt"
	"github.com/securevision/events/internal/testbin"
)

// Targets of the MQTT section.
const (
	targetMQTTEvS = 20_000 // events/s from the log to Mosquitto, QoS 1, none lost
	// targetMQTTIngestCost: batch ingest with the publisher attached keeps
	// within this fraction of the rate without it (integrations read the
	// log; they are not on the commit path).
	targetMQTTIngestCost = 0.05
	// mqttEvents is the backlog the publisher drains in the throughput run.
	mqttEvents = 200_000
)

// runMQTT measures (1) how fast the publisher drains a backlog from the
// log into a real Mosquitto at QoS 1, with an independent subscriber
// (mosquitto_sub) counting every id, and (2) batch ingest through the real
// server with MQTT attached against none, alternating in one run.
func runMQTT(e *env, s *bench.Section) error {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			s.Skipped = "mosquitto not installed (make deps installs it)"
			return nil
		}
	}
	sub, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		s.Skipped = "mosquitto_sub not installed (make deps installs mosquitto-clients)"
		return nil
	}
	brk, err := startMosquitto(e, bin)
	if err != nil {
		return err
	}
	defer brk.stop()
	s.Commands = append(s.Commands, brk.command)
	if err := mqttDrain(e, s, brk, sub); err != nil {
		return err
	}
	return mqttIngestCost(e, s, brk)
}

// mosq is a Mosquitto broker the section started.
type mosq struct {
	cmd     *exec.Cmd
	port    int
	command string
	done    chan struct{}
}

func startMosquitto(e *env, bin string) (*mosq, error) {
	port, err := testbin.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.cfg.workDir, "mosquitto-")
	if err != nil {
		return nil, err
	}
	// No persistence, no limit on the queue of a slow subscriber, no
	// limit on messages in flight to it: nothing may be dropped.
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n", port)
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		return nil, err
	}
	m := &mosq{cmd: exec.Command(bin, "-c", path), port: port, done: make(chan struct{}),
		command: fmt.Sprintf("%s -c mosquitto.conf  # %s", bin, strings.ReplaceAll(strings.TrimSpace(conf), "\n", "; "))}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = m.cmd.Wait(); logf.Close(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.addr(), time.Second)
		if err == nil {
			c.Close()
			return m, nil
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, fmt.Errorf("mosquitto does not accept connections: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mosq) addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

func (m *mosq) stop() {
	_ = m.cmd.Process.Kill()
	<-m.done
}

// mqttDrain: a fresh store of mqttEvents events, the publisher's cursor
// at 0, then Start; the clock runs until mosquitto_sub has received
// every id (and, separately, until the cursor reached the last id: every
// PUBACK).
func mqttDrain(e *env, s *bench.Section, brk *mosq, subBin string) error {
	dir, err := e.freshStore("mqtt-drain")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e.logf("mqtt: building a store of %d events", mqttEvents)
	if _, err := bench.BuildStore(dir, mqttEvents, bench.WithProgress(e.progress)); err != nil {
		return err
	}
	st, err := core.Open(core.Options{URL: dir})
	if err != nil {
		return err
	}
	defer st.Close()
	last := st.Log().LastID()
	// The cursor at 0: the publisher drains the whole log.
	if err := st.Log().Update(e.ctx, func(tx *eventlog.Tx) error {
		return tx.Set([]byte("Cmqtt/cursor"), make([]byte, 8))
	}); err != nil {
		return err
	}

	// mosquitto_sub (a separate process) prints each firehose message;
	// it runs until every id has arrived.
	subArgs := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(brk.port), "-t", "securevision/events", "-q", "1", "-i", "bench-sub"}
	subCmd := exec.CommandContext(e.ctx, subBin, subArgs...)
	out, err := subCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := subCmd.Start(); err != nil {
		return err
	}
	defer func() { _ = subCmd.Process.Kill(); _ = subCmd.Wait() }()
	s.Commands = append(s.Commands, subBin+" "+strings.Join(subArgs, " ")+"  # counts distinct ids on the firehose")
	seen := make(map[uint64]bool, last)
	probed, all := make(chan struct{}), make(chan struct{})
	var gotAll time.Time
	go func() {
		probeSeen := false
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		const pre = `{"id":`
		for sc.Scan() {
			line := sc.Bytes()
			if string(line) == "probe" {
				if !probeSeen {
					probeSeen = true
					close(probed)
				}
				continue
			}
			if !bytes.HasPrefix(line, []byte(pre)) {
				continue
			}
			rest := line[len(pre):]
			if n := bytes.IndexByte(rest, ','); n > 0 {
				if id, err := strconv.ParseUint(string(rest[:n]), 10, 64); err == nil && !seen[id] {
					seen[id] = true
					if uint64(len(seen)) == last {
						gotAll = time.Now()
						close(all)
						return
					}
				}
			}
		}
	}()
	// The subscription is in place once a probe published after it comes
	// back (mosquitto_pub, the other client of mosquitto-clients).
	if err := probe(e.ctx, brk, probed); err != nil {
		return err
	}

	pub, err := mqtt.New(mqtt.Options{URL: "mqtt://" + brk.addr(), ClientID: "bench-pub", Log: st.Log(), DiscoveryPrefix: "homeassistant"})
	if err != nil {
		return err
	}
	st.Subscribe(pub.Notify)
	start := time.Now()
	if err := pub.Start(); err != nil {
		return err
	}
	deadline := time.NewTimer(10 * time.Minute)
	defer deadline.Stop()
	timedOut := false
	select {
	case <-all:
	case <-deadline.C:
		timedOut = true
	case <-e.ctx.Done():
		return e.ctx.Err()
	}
	for pub.Health().Cursor < last && !timedOut {
		time.Sleep(time.Millisecond)
	}
	acked := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pub.Stop(sctx); err != nil {
		return err
	}
	cursor := pub.Health().Cursor
	var lost uint64
	if timedOut {
		// The reader may still be writing seen: count nothing as received.
		lost = last
	} else {
		lost = last - uint64(len(seen))
	}
	ackRate := float64(cursor) / acked.Sub(start).Seconds()
	recvRate := 0.0
	if !gotAll.IsZero() {
		recvRate = float64(last) / gotAll.Sub(start).Seconds()
	}
	s.Tables = append(s.Tables, bench.Table{
		Header: []string{"run", "events", "events/s (cursor: every PUBACK)", "events/s (every id at mosquitto_sub)", "distinct ids received", "lost"},
		Rows: [][]string{{"drain the log to Mosquitto, QoS 1, discovery on", strconv.FormatUint(last, 10), bench.FormatRate(ackRate),
			bench.FormatRate(recvRate), strconv.FormatUint(last-lost, 10), strconv.FormatUint(lost, 10)}},
	})
	s.Text = append(s.Text, fmt.Sprintf("Drain: a fresh store of %d generated events (bench.BuildStore) is opened with internal/core, "+
		"the publisher's cursor set to 0 and the publisher started in this process against a local Mosquitto; "+
		"mosquitto_sub (a separate process, QoS 1) counts distinct ids on securevision/events. Each event is one firehose "+
		"message plus the retained latest event per camera and type (once per chunk of up to 256 records).", last))
	pass := !timedOut && lost == 0 && recvRate >= targetMQTTEvS
	measured := fmt.Sprintf("%s events/s, %d lost", bench.FormatRate(recvRate), lost)
	if timedOut {
		measured += " (timed out after 10 minutes)"
	}
	s.Check("log → Mosquitto at QoS 1, every id received", "≥ "+bench.FormatRate(targetMQTTEvS)+" events/s, none lost", measured, pass)
	return nil
}

// probe publishes "probe" to the firehose topic every 100 ms until the
// subscriber saw one.
func probe(ctx context.Context, brk *mosq, seen <-chan struct{}) error {
	pubBin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		return err
	}
	for range 300 {
		cmd := exec.CommandContext(ctx, pubBin, "-h", "127.0.0.1", "-p", strconv.Itoa(brk.port), "-t", "securevision/events", "-q", "1", "-m", "probe")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mosquitto_pub: %w: %s", err, out)
		}
		select {
		case <-seen:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("mosquitto_sub never received a probe")
}

// mqttIngestCost runs batch ingest through the real server, alternating
// with and without MQTT attached, for -rounds rounds on fresh stores.
func mqttIngestCost(e *env, s *bench.Section, brk *mosq) error {
	gen := bench.NewGenerator(23, nil)
	now := time.Now().UnixMilli()
	reqs := make([]bench.Request, 8)
	for i := range reqs {
		reqs[i] = bench.Request{Method: http.MethodPost, Path: "/ingest", Body: gen.Body(1000, now+int64(i*1000)), ContentType: "application/json"}
	}
	type outcome struct {
		evs  float64
		res  bench.LoadResult
		lag  uint64
		conn bool
	}
	// A port nothing listens on: the publisher is attached (subscribed to
	// the commit bus, retrying its connection) but publishes nothing.
	deadPort, err := testbin.FreePort()
	if err != nil {
		return err
	}
	const (
		modeNone = iota
		modeMQTT
		modeDown
	)
	one := func(mode int) (outcome, error) {
		name := []string{"none", "mqtt", "down"}[mode]
		var envv []string
		switch mode {
		case modeMQTT:
			envv = []string{"SECUREVISION__MQTT__URL=mqtt://" + brk.addr(), "SECUREVISION__MQTT__CLIENT_ID=bench-ingest"}
		case modeDown:
			envv = []string{fmt.Sprintf("SECUREVISION__MQTT__URL=mqtt://127.0.0.1:%d", deadPort)}
		}
		dir, err := e.freshStore("mqtt-ingest-" + name)
		if err != nil {
			return outcome{}, err
		}
		defer os.RemoveAll(dir)
		srv, err := e.startServer(dir, s, envv...)
		if err != nil {
			return outcome{}, err
		}
		e.logf("mqtt ingest cost, %s: 1000 events/request, 4 connections, %s", name, e.cfg.duration)
		res, err := e.runner.Run(e.ctx, bench.LoadSpec{Name: "mqtt-ingest-" + name, BaseURL: srv.URL, Requests: reqs,
			Conns: 4, Threads: 2, Duration: e.cfg.duration})
		var h struct {
			MQTT *mqtt.Health `json:"mqtt"`
		}
		herr := srv.GetJSON(e.ctx, "/health", &h)
		serr := e.stopServer(srv)
		if err := errors.Join(err, herr, serr); err != nil {
			return outcome{}, err
		}
		if !contains(s.Commands, res.Command) {
			s.Commands = append(s.Commands, res.Command)
		}
		o := outcome{res: res, evs: float64(res.Requests-res.Non2xx-res.Errors) * 1000 / res.Duration.Seconds()}
		if h.MQTT != nil {
			o.lag, o.conn = h.MQTT.Lag, h.MQTT.Connected
		}
		return o, nil
	}
	var none, with, down []outcome
	// The order rotates from round to round, so that no mode always
	// follows the heaviest one (the previous run's writeback and
	// compactions slow the next).
	modes := []int{modeNone, modeMQTT, modeDown}
	for round := range e.cfg.rounds {
		for k := range modes {
			mode := modes[(k+round)%len(modes)]
			o, err := one(mode)
			if err != nil {
				return err
			}
			switch mode {
			case modeMQTT:
				if !o.conn {
					return errors.New("the server with MQTT attached was not connected to the broker at the end of the run")
				}
				with = append(with, o)
			case modeDown:
				down = append(down, o)
			default:
				none = append(none, o)
			}
		}
	}
	rate := func(o outcome) float64 { return o.evs }
	mn, mw, md := medianBy(none, rate), medianBy(with, rate), medianBy(down, rate)
	ratio := medianRatio(with, none, rate)
	t := bench.Table{Header: []string{"run", "events/s (acked, median)", "events/s of each round", "MQTT lag at the end (events)", "errors + non-2xx"}}
	for _, r := range []struct {
		name string
		m    outcome
		all  []outcome
	}{{"no MQTT", mn, none}, {"MQTT attached", mw, with}, {"MQTT configured, broker unreachable", md, down}} {
		var each, lags []string
		for _, o := range r.all {
			each = append(each, bench.FormatRate(o.evs))
			lags = append(lags, strconv.FormatUint(o.lag, 10))
		}
		lag := "—"
		if r.name == "MQTT attached" {
			lag = strings.Join(lags, ", ")
		}
		t.Rows = append(t.Rows, []string{r.name, bench.FormatRate(r.m.evs), strings.Join(each, ", "), lag,
			strconv.FormatInt(r.m.res.Non2xx+r.m.res.Errors, 10)})
	}
	s.Tables = append(s.Tables, t)
	s.Text = append(s.Text, fmt.Sprintf("Ingest cost: POST /ingest with 1000-event bodies at 4 connections against the real server "+
		"on fresh stores, without MQTT, with it publishing to the local Mosquitto, and with it configured for a port nobody "+
		"listens on (attached to the commit bus, publishing nothing), for %d rounds, the order rotating per round. The lag column is what the "+
		"publisher had not yet had acknowledged when the load stopped: it drains afterwards.", e.cfg.rounds))
	s.Notes = append(s.Notes, fmt.Sprintf("With the broker unreachable (the reader attached to the commit bus, publishing "+
		"nothing), ingest ran at %.1f%% of the rate without MQTT (median of same-round ratios). Compare the rounds' spread "+
		"within one mode before reading a difference between modes: the publishing run also has the client and Mosquitto "+
		"competing with ingest for the same CPUs.", 100*medianRatio(down, none, rate)))
	s.Check("batch ingest with MQTT attached vs none (same run)", fmt.Sprintf("within %.0f%%", 100*targetMQTTIngestCost),
		fmt.Sprintf("%.1f%% of the rate without (median of same-round ratios)", 100*ratio)+errSuffix(mw.res)+errSuffix(mn.res),
		ratio >= 1-targetMQTTIngestCost && clean(mw.res) && clean(mn.res))
	return nil
}
