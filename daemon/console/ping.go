package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// PingResult sums up a ping run.
type PingResult struct {
	Addr     net.IP
	Sent     int
	Received int
	RTTs     []time.Duration
}

// Ping sends count ICMP echo requests to host, one per interval, and
// prints each answer to out. It uses an unprivileged ICMP socket
// (net.ipv4.ping_group_range) when the kernel allows one, else a raw
// socket (root).
func Ping(ctx context.Context, host string, count int, interval, timeout time.Duration, out io.Writer) (PingResult, error) {
	var res PingResult
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ips, err := net.DefaultResolver.LookupIP(rctx, "ip", host)
	cancel()
	if err != nil || len(ips) == 0 {
		return res, fmt.Errorf("ping %s: cannot resolve: %w", host, err)
	}
	ip := ips[0]
	for _, c := range ips {
		if c.To4() != nil {
			ip = c
			break
		}
	}
	res.Addr = ip
	v4 := ip.To4() != nil
	conn, privileged, err := listenICMP(v4)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	var dst net.Addr = &net.UDPAddr{IP: ip}
	if privileged {
		dst = &net.IPAddr{IP: ip}
	}
	id := os.Getpid() & 0xffff
	proto := 1
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if !v4 {
		proto, typ = 58, ipv6.ICMPTypeEchoRequest
	}
	fmt.Fprintf(out, "PING %s (%s)\n", host, ip)
	buf := make([]byte, 1500)
	for seq := 1; seq <= count; seq++ {
		if ctx.Err() != nil {
			break
		}
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("sipedge-console-ping")}}
		wb, err := msg.Marshal(nil)
		if err != nil {
			return res, fmt.Errorf("ping: %w", err)
		}
		start := time.Now()
		if _, err := conn.WriteTo(wb, dst); err != nil {
			fmt.Fprintf(out, "seq=%d: send: %v\n", seq, err)
			res.Sent++
			sleepCtx(ctx, interval)
			continue
		}
		res.Sent++
		got := false
		deadline := start.Add(timeout)
		for !got && time.Now().Before(deadline) {
			conn.SetReadDeadline(deadline)
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				break
			}
			rm, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			echo, ok := rm.Body.(*icmp.Echo)
			if !ok || echo.Seq != seq || (privileged && echo.ID != id) {
				continue // the kernel rewrites the ID of unprivileged sockets
			}
			if rm.Type != ipv4.ICMPTypeEchoReply && rm.Type != ipv6.ICMPTypeEchoReply {
				continue
			}
			rtt := time.Since(start)
			got = true
			res.Received++
			res.RTTs = append(res.RTTs, rtt)
			fmt.Fprintf(out, "reply from %s: seq=%d time=%.2f ms\n", ip, seq, float64(rtt.Microseconds())/1000)
		}
		if !got {
			fmt.Fprintf(out, "seq=%d: no reply within %s\n", seq, timeout)
		}
		if seq < count {
			sleepCtx(ctx, interval-time.Since(start))
		}
	}
	loss := 100
	if res.Sent > 0 {
		loss = 100 * (res.Sent - res.Received) / res.Sent
	}
	fmt.Fprintf(out, "%d sent, %d received, %d%% loss\n", res.Sent, res.Received, loss)
	if res.Received == 0 {
		return res, errors.New("no reply")
	}
	return res, nil
}

func listenICMP(v4 bool) (*icmp.PacketConn, bool, error) {
	nw, raw, addr := "udp4", "ip4:icmp", "0.0.0.0"
	if !v4 {
		nw, raw, addr = "udp6", "ip6:ipv6-icmp", "::"
	}
	c, err := icmp.ListenPacket(nw, addr)
	if err == nil {
		return c, false, nil
	}
	c, err2 := icmp.ListenPacket(raw, addr)
	if err2 == nil {
		return c, true, nil
	}
	return nil, false, fmt.Errorf("ping: no ICMP socket (unprivileged: %v; raw: %v)", err, err2)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
