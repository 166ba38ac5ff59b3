// Command producer is the hello sample's producer: it appends numbered
// messages to /data/messages.log, then "done". Built static, it is the whole
// content of its image.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	count, err := strconv.Atoi(os.Getenv("COUNT"))
	if err != nil || count <= 0 {
		count = 5
	}
	interval, err := time.ParseDuration(os.Getenv("INTERVAL"))
	if err != nil {
		interval = 500 * time.Millisecond
	}
	f, err := os.OpenFile("/data/messages.log", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
	defer f.Close()
	host, _ := os.Hostname()
	fmt.Printf("producer: pid %d on %s, writing %d messages\n", os.Getpid(), host, count)
	for i := 1; i <= count; i++ {
		msg := fmt.Sprintf("message %d of %d", i, count)
		fmt.Fprintln(f, msg)
		fmt.Println("producer: wrote", msg)
		time.Sleep(interval)
	}
	fmt.Fprintln(f, "done")
	fmt.Fprintln(os.Stderr, "producer: done (this line went to stderr)")
}
