// Command app is every service of the shop sample, chosen by its first
// argument, so that one static binary makes one image:
//
//	app frontend   :8080, the page a user sees; asks the api by service name
//	app api        :8081, the orders; keeps them in the store
//	app store      :8082, a tiny key-value store on a named volume (/data)
//	app worker     fulfils new orders through the api, every second
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: app frontend|api|store|worker")
	}
	switch os.Args[1] {
	case "frontend":
		serve(":8080", http.HandlerFunc(frontend))
	case "api":
		serve(":8081", api())
	case "store":
		serve(":8082", store(envOr("DATA", "/data")))
	case "worker":
		worker()
	default:
		log.Fatalf("unknown role %q", os.Args[1])
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func serve(addr string, h http.Handler) {
	host, _ := os.Hostname()
	log.Printf("%s listening on %s (container %s)", os.Args[1], addr, host)
	log.Fatal(http.ListenAndServe(addr, h))
}

type order struct {
	ID     int    `json:"id"`
	Item   string `json:"item"`
	Status string `json:"status"`
}

// frontend renders the orders it gets from the api, found by its service name.
func frontend(w http.ResponseWriter, r *http.Request) {
	if item := r.URL.Query().Get("order"); item != "" {
		resp, err := http.Post("http://api:8081/orders", "text/plain", strings.NewReader(item))
		if err != nil {
			http.Error(w, "api: "+err.Error(), http.StatusBadGateway)
			return
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://api:8081/orders")
	if err != nil {
		http.Error(w, "api: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	var orders []order
	if err := json.NewDecoder(resp.Body).Decode(&orders); err != nil {
		http.Error(w, "api: "+err.Error(), http.StatusBadGateway)
		return
	}
	fmt.Fprintf(w, "berth shop: %d orders (frontend -> api -> store)\n", len(orders))
	for _, o := range orders {
		fmt.Fprintf(w, "  #%d %-10s %s\n", o.ID, o.Item, o.Status)
	}
}

// api keeps the orders as one JSON document in the store.
func api() http.Handler {
	var mu sync.Mutex
	load := func() ([]order, error) {
		resp, err := http.Get("http://store:8082/orders")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var orders []order
		if resp.StatusCode == http.StatusNotFound {
			return orders, nil
		}
		return orders, json.NewDecoder(resp.Body).Decode(&orders)
	}
	save := func(orders []order) error {
		data, _ := json.Marshal(orders)
		req, _ := http.NewRequest(http.MethodPut, "http://store:8082/orders", strings.NewReader(string(data)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		orders, err := load()
		if err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusBadGateway)
			return
		}
		json.NewEncoder(w).Encode(orders)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		item, _ := io.ReadAll(io.LimitReader(r.Body, 64))
		mu.Lock()
		defer mu.Unlock()
		orders, err := load()
		if err == nil {
			orders = append(orders, order{ID: len(orders) + 1, Item: string(item), Status: "new"})
			err = save(orders)
		}
		if err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusBadGateway)
			return
		}
		log.Printf("api: order #%d for %s", len(orders), item)
	})
	mux.HandleFunc("POST /orders/fulfil", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		orders, err := load()
		n := 0
		for i := range orders {
			if orders[i].Status == "new" {
				orders[i].Status = "shipped"
				n++
			}
		}
		if err == nil && n > 0 {
			err = save(orders)
		}
		if err != nil {
			http.Error(w, "store: "+err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintln(w, n)
	})
	return mux
}

// store keeps each key in a file of dir.
func store(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := filepath.Base(r.URL.Path)
		path := filepath.Join(dir, key+".json")
		switch r.Method {
		case http.MethodGet:
			data, err := os.ReadFile(path)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Write(data)
		case http.MethodPut:
			data, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			err := os.WriteFile(path+".tmp", data, 0o644)
			if err == nil {
				err = os.Rename(path+".tmp", path)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			log.Printf("store: wrote %s (%d bytes) to %s", key, len(data), dir)
		default:
			http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
		}
	})
}

// worker ships new orders through the api.
func worker() {
	log.Printf("worker: shipping new orders every second")
	for range time.Tick(time.Second) {
		resp, err := http.Post("http://api:8081/orders/fulfil", "text/plain", nil)
		if err != nil {
			log.Printf("worker: api: %v", err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if n := strings.TrimSpace(string(body)); n != "0" {
			log.Printf("worker: shipped %s order(s)", n)
		}
	}
}
