package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/elasticache-local/elasticache-local/emulator/proxy"
	"github.com/elasticache-local/elasticache-local/engine"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7101", "")
	port := flag.Int("backend", 7001, "")
	mode := flag.String("mode", "pkg", "pkg|copy")
	prof := flag.String("prof", "", "")
	flag.Parse()
	if *prof != "" {
		f, _ := os.Create(*prof)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	switch *mode {
	case "pkg":
		p, err := proxy.Listen(*listen, proxy.Options{Name: "exp"})
		if err != nil {
			panic(err)
		}
		p.SetBackends([]engine.Endpoint{{Host: "127.0.0.1", Port: *port}})
		defer p.Close()
	case "copy":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			panic(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					b, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
					if err != nil {
						c.Close()
						return
					}
					go func() {
						io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{b}, make([]byte, 64<<10))
						c.Close()
					}()
					io.CopyBuffer(struct{ io.Writer }{b}, struct{ io.Reader }{c}, make([]byte, 64<<10))
					b.Close()
				}()
			}
		}()
	}
	fmt.Println("ready")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
