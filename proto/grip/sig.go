package grip

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SigTTL is how far in the future a Grip-Sig token's exp lies.
const SigTTL = time.Hour

// sigRefresh is how old a cached token may get before it is re-signed. Its
// exp then still lies at least SigTTL-sigRefresh ahead, which no backend
// can tell apart from a fresh one.
const sigRefresh = time.Minute

// Key is a parsed sig_key / upstream_key (grip.md §1): an HMAC secret
// (plain or `base64:`) used with HS256, or a PEM key file (`file:`) used
// with ES256 or RS256 depending on its type.
type Key struct {
	method jwt.SigningMethod
	sign   any // []byte, *ecdsa.PrivateKey or *rsa.PrivateKey; nil for a public-only key
	verify any // []byte, *ecdsa.PublicKey or *rsa.PublicKey
}

// ParseKey parses a key setting. Relative `file:` paths are resolved
// against dir (the directory of the config file that named them).
func ParseKey(spec, dir string) (*Key, error) {
	switch {
	case strings.HasPrefix(spec, "base64:"):
		b, err := base64.StdEncoding.DecodeString(spec[len("base64:"):])
		if err != nil {
			return nil, fmt.Errorf("%w: base64 key: %w", ErrKey, err)
		}
		return hmacKey(b), nil
	case strings.HasPrefix(spec, "file:"):
		path := spec[len("file:"):]
		if !filepath.IsAbs(path) && dir != "" {
			path = filepath.Join(dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		k, err := parsePEMKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrKey, path, err)
		}
		return k, nil
	}
	return hmacKey([]byte(spec)), nil
}

func hmacKey(b []byte) *Key {
	return &Key{method: jwt.SigningMethodHS256, sign: b, verify: b}
}

func parsePEMKey(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var parsed any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		parsed, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "PUBLIC KEY":
		parsed, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		parsed, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := parsed.(type) {
	case *ecdsa.PrivateKey:
		return &Key{method: jwt.SigningMethodES256, sign: k, verify: &k.PublicKey}, nil
	case *ecdsa.PublicKey:
		return &Key{method: jwt.SigningMethodES256, verify: k}, nil
	case *rsa.PrivateKey:
		return &Key{method: jwt.SigningMethodRS256, sign: k, verify: &k.PublicKey}, nil
	case *rsa.PublicKey:
		return &Key{method: jwt.SigningMethodRS256, verify: k}, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", parsed)
}

// Alg returns the JWT algorithm the key uses (HS256, ES256 or RS256).
func (k *Key) Alg() string { return k.method.Alg() }

// CanSign reports whether the key holds private material (false for a
// PEM public key, which can only verify).
func (k *Key) CanSign() bool { return k.sign != nil }

// Sign returns a token with claims {"iss": iss, "exp": exp}.
func (k *Key) Sign(iss string, exp time.Time) (string, error) {
	if k.sign == nil {
		return "", fmt.Errorf("%w: public key cannot sign", ErrKey)
	}
	claims := jwt.MapClaims{"iss": iss, "exp": exp.Unix()}
	s, err := jwt.NewWithClaims(k.method, claims).SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("signing grip-sig: %w", err)
	}
	return s, nil
}

// Verify checks a Grip-Sig token: signature by this key with this key's
// algorithm, and an `exp` claim later than now. A request carrying a token
// that verifies with upstream_key is trusted (grip.md §1).
func (k *Key) Verify(token string, now time.Time) error {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{k.method.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := p.Parse(token, func(*jwt.Token) (any, error) { return k.verify, nil })
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSig, err)
	}
	return nil
}

// Signer produces the Grip-Sig header value for proxied requests. It sits
// on the hot path of every request, so it caches the signed token and
// re-signs only when the cached one is over a minute old. Safe for
// concurrent use.
type Signer struct {
	iss string
	key *Key
	now func() time.Time

	cur atomic.Pointer[signed]
	mu  sync.Mutex // serialises re-signing so a burst signs once
}

type signed struct {
	token string
	at    time.Time
}

// NewSigner returns a Signer for issuer iss (sig_iss) and key (sig_key).
func NewSigner(iss string, key *Key) (*Signer, error) {
	if !key.CanSign() {
		return nil, fmt.Errorf("%w: sig_key is a public key", ErrKey)
	}
	return &Signer{iss: iss, key: key, now: time.Now}, nil
}

// Token returns a token valid for about SigTTL from now.
func (s *Signer) Token() (string, error) {
	now := s.now()
	if c := s.cur.Load(); c != nil && fresh(c, now) {
		return c.token, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cur.Load(); c != nil && fresh(c, now) {
		return c.token, nil
	}
	tok, err := s.key.Sign(s.iss, now.Add(SigTTL))
	if err != nil {
		return "", err
	}
	s.cur.Store(&signed{token: tok, at: now})
	return tok, nil
}

func fresh(c *signed, now time.Time) bool {
	age := now.Sub(c.at)
	return age >= 0 && age < sigRefresh
}
