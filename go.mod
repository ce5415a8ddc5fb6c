module github.com/pushpin-go/pushpin

go 1.26.8

require github.com/zeromq/goczmq v4.1.0+incompatible // indirect
