module github.com/pushpin-go/pushpin

go 1.26.8

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/zeromq/goczmq v4.1.0+incompatible
)

require github.com/evanphx/json-patch/v5 v5.9.11
