package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
)

// PprofEnv names a directory: when it is set, every tier serves Go's
// pprof handlers on an ephemeral loopback port and writes the address to
// <dir>/<tier>-<pid>.pprof, so a profile of any process of a running stack
// (`go tool pprof http://$(cat dir/proxy-*.pprof)/debug/pprof/heap`) needs
// no restart with other flags. Off unless set.
const PprofEnv = "PUSHPIN_PPROF_DIR"

// servePprof starts the pprof listener if PprofEnv is set; failures are
// logged and the tier runs on without it.
func servePprof(what string, log *Log) {
	dir := os.Getenv(PprofEnv)
	if dir == "" {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Warn().Err(err).Msg("pprof listener")
		return
	}
	name := strings.ReplaceAll(what, " ", "-")
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", name, os.Getpid())), []byte(ln.Addr().String()), 0o644); err != nil {
		log.Warn().Err(err).Msg("pprof address file")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info().Str("addr", ln.Addr().String()).Msg("pprof listening")
	go func() { _ = http.Serve(ln, mux) }() //nolint:gosec // loopback only, opt-in debugging aid
}
