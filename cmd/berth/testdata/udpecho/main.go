// Command udpecho answers every UDP datagram with "echo: " and its content:
// the container side of TestPublishedUDP (busybox has no UDP server).
package main

import (
	"log"
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("udpecho on %s", c.LocalAddr())
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		c.WriteTo(append([]byte("echo: "), buf[:n]...), from)
	}
}
