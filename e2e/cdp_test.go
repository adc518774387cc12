package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// chromiumPath is Debian's chromium package.
const chromiumPath = "/usr/bin/chromium"

// browser is a headless Chromium driven over the Chrome DevTools Protocol:
// just the few commands the dashboard test needs, on one page.
type browser struct {
	cmd     *exec.Cmd
	profile string // the browser's profile directory, removed by close
	ws      *websocket.Conn
	mu      sync.Mutex
	next    int64
	wait    map[int64]chan cdpMessage

	// What the page reported: exceptions, console and CSP errors, and the
	// URL of every request it made.
	logMu    sync.Mutex
	problems []string
	requests []string
}

type cdpMessage struct {
	ID     int64           `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// startBrowser starts headless Chromium with an empty profile and attaches
// to its page.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	// The profile is removed by close, after the browser's every process
	// is gone: its helper processes outlive a killed main process for a
	// moment and keep writing there (t.TempDir's removal then failed).
	profile, err := os.MkdirTemp("", "ferry-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumPath, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--disable-extensions", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--remote-allow-origins=*",
		"--window-size=1280,900", "about:blank")
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // close kills the whole group
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile) //nolint:errcheck // nothing started
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	b := &browser{cmd: cmd, profile: profile, wait: map[int64]chan cdpMessage{}}
	t.Cleanup(b.close)

	// Chromium writes its port to DevToolsActivePort once it listens.
	var port string
	deadline := time.Now().Add(30 * time.Second)
	for port == "" {
		if time.Now().After(deadline) {
			t.Fatal("chromium did not open its DevTools port within 30s")
		}
		if data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			if lines := strings.Split(string(data), "\n"); len(lines) >= 2 && lines[0] != "" {
				port = lines[0]
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	var targets []struct {
		Type, WebSocketDebuggerURL string
	}
	for len(targets) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("chromium shows no page to attach to")
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err == nil {
			var all []struct {
				Type                 string `json:"type"`
				WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
			}
			err = json.NewDecoder(resp.Body).Decode(&all)
			resp.Body.Close()
			for _, tg := range all {
				if tg.Type == "page" && err == nil {
					targets = append(targets, struct{ Type, WebSocketDebuggerURL string }{tg.Type, tg.WebSocketDebuggerURL})
				}
			}
		}
		if len(targets) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	ws, err := websocket.Dial(targets[0].WebSocketDebuggerURL, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("attach to chromium: %v", err)
	}
	ws.MaxPayloadBytes = 64 << 20
	b.ws = ws
	go b.read()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Network.enable", "Log.enable"} {
		b.call(t, m, nil)
	}
	b.call(t, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false})
	return b
}

func (b *browser) read() {
	for {
		var m cdpMessage
		if err := websocket.JSON.Receive(b.ws, &m); err != nil {
			b.mu.Lock()
			for id, ch := range b.wait {
				close(ch)
				delete(b.wait, id)
			}
			b.mu.Unlock()
			return
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		b.event(m)
	}
}

func (b *browser) event(m cdpMessage) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	switch m.Method {
	case "Runtime.exceptionThrown":
		b.problems = append(b.problems, "exception: "+string(m.Params))
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(m.Params, &p) == nil && (p.Type == "error" || p.Type == "assert") {
			b.problems = append(b.problems, "console: "+string(m.Params))
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		// A lost event stream when ferry exits is expected; anything else
		// (a CSP violation, a failed fetch) is not.
		if json.Unmarshal(m.Params, &p) == nil && p.Entry.Level == "error" && !strings.Contains(p.Entry.URL, "/api/events") {
			b.problems = append(b.problems, "log: "+p.Entry.Text+" "+p.Entry.URL)
		}
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			b.requests = append(b.requests, p.Request.URL)
		}
	}
}

// call sends a command and waits for its result.
func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMessage, 1)
	b.wait[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := websocket.JSON.Send(b.ws, msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: chromium closed the connection", method)
		}
		if m.Error != nil {
			t.Fatalf("%s: %s", method, m.Error.Message)
		}
		return m.Result
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer within 30s", method)
	}
	return nil
}

func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	b.call(t, "Page.navigate", map[string]any{"url": url})
}

// eval evaluates a JavaScript expression in the page and decodes its value
// into out.
func (b *browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	res := b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluating %q: %s", expr, r.ExceptionDetails)
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		t.Fatalf("evaluating %q: %v (%s)", expr, err, r.Result.Value)
	}
}

// screenshot saves the page as a PNG.
func (b *browser) screenshot(t *testing.T, path string) {
	t.Helper()
	res := b.call(t, "Page.captureScreenshot", map[string]any{"format": "png"})
	var r struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatal(err)
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// report returns the problems the page reported and the URLs it requested.
func (b *browser) report() (problems, requests []string) {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return append([]string{}, b.problems...), append([]string{}, b.requests...)
}

func (b *browser) close() {
	if b.ws != nil {
		b.ws.Close()
	}
	if b.cmd.Process != nil {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // best effort at test end
		b.cmd.Wait()                                      //nolint:errcheck // killed
	}
	// A helper process of the group may still be exiting: retry briefly.
	for range 50 {
		if os.RemoveAll(b.profile) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dashboardURL waits for ferry's "dashboard listening" log line and returns
// its URL.
func dashboardURL(t *testing.T, bg *background) string {
	t.Helper()
	if !bg.waitFor(t, "dashboard listening", 60*time.Second) {
		t.Fatalf("ferry did not start its dashboard:\n%s", bg.stderr.String())
	}
	sc := bufio.NewScanner(strings.NewReader(bg.stderr.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "dashboard listening" {
			return fmt.Sprint(m["url"])
		}
	}
	t.Fatal("no dashboard URL in the log")
	return ""
}

// waitUntil polls cond every 200ms until it holds or timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
	return cond()
}
