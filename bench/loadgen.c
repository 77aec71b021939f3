/*
 * loadgen: a small native WebSocket load client (epoll, non-blocking, one thread).
 *
 * Why C: every JavaScript client measured on this machine (Node ws, Bun, Deno)
 * saturates its core at 86-205 k msgs/s before Bun.serve does, so server-bound
 * numbers need a client that costs far less per message than the server.
 *
 * Modes (all print one JSON object on stdout, progress lines on stderr):
 *   echo    N connections, a window of W in-flight frames each, payload S bytes;
 *           round-trip latency from a per-connection FIFO of send times.
 *   fanout  M subscribers of one room plus one publisher (connection M), burst
 *           (window W of own messages not yet seen back) or paced (--rate R/s);
 *           publish-to-delivery latency from a timestamp ("bt") in the payload.
 *   idle    open N connections, report the connect rate, hold them --hold s.
 *   m2m     many-to-many: --rooms R rooms of --conns M members each ("{}" in --path is the
 *           room's index), every member publishes and every publish must reach the room's
 *           other M-1 members. Each --rates phase (per member, Hz; 0 = saturation) runs in
 *           turn on the same connections: saturation keeps each member's own updates not yet
 *           delivered to every other member below a window W (--window; counted in deliveries:
 *           fewer than W·(M-1) outstanding), paced sends F times a second per member, the
 *           members' sends spread evenly over the period. The payload carries the send time
 *           ("bt") and the sender's index ("s"), so a delivery acknowledges its sender's window
 *           and gives its latency; a member's own update coming back is counted apart (self).
 *           --binary sends the same bytes as binary frames (a relay); --proto mp as MessagePack.
 *
 * Frames are masked (RFC 6455 5.3). The echo frame is masked once with one key
 * and re-sent as is, so the client spends almost nothing per message.
 * --proto sio speaks engine.io v4 / socket.io v5 over its WebSocket transport:
 * open packet "0{..}", connect "40", events "42[...]", ping "2" answered "3".
 * --proto mp offers the subprotocol edgewire.v1+msgpack (and fails a handshake the
 * server answers without it); fan-out publishes are binary MessagePack frames, and
 * "bt" is read back from binary frames as a MessagePack integer. Echo and idle
 * send what ws sends: /echo returns bytes unchanged whatever the subprotocol.
 * --server-pids a,b,c: the client reads their CPU time from /proc at the exact
 * start and end of the measured window.
 *
 * Build: gcc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---------- options ---------- */
#define MP_SUBPROTOCOL "edgewire.v1+msgpack"
enum { M_ECHO, M_FANOUT, M_IDLE, M_M2M };
static struct {
  const char *host;
  int port;
  const char *path;
  int mode;
  int conns;       /* echo/idle: connections; fanout: subscribers */
  int window;      /* echo: in flight per connection; fanout burst: publisher window */
  int size;        /* payload bytes */
  double duration; /* measured seconds */
  double warmup;   /* seconds of traffic before measuring */
  double rate;     /* fanout: publishes per second, 0 = burst */
  int batch;       /* coalesce a connection's frames into one write */
  int binary;      /* echo: binary frames instead of text */
  int sio;         /* socket.io framing */
  int mp;          /* edgewire.v1+msgpack: binary MessagePack publishes and deliveries */
  int welcome;     /* a connection is ready after its first data frame */
  double hold;     /* idle: seconds to hold the connections */
  double connect_timeout;
  int max_pending; /* connections in handshake at once */
  int src_ips;     /* spread source addresses over 127.0.0.1..K (more than 28k ports) */
  double settle;   /* fanout: quiet time (s) after joins before publishing */
  double settle_max;
  double drain;    /* seconds to wait for in-flight frames after the window */
  double then_paced; /* fanout burst: then pace the same room at this fraction of the burst rate */
  char pids[512];
  int ports[16]; /* --ports: members spread over several servers (a fleet); the publisher uses the first */
  int nports;
  int rooms;        /* m2m: rooms of --conns members each */
  double read_pause_us; /* m2m saturation: the longest pause between passes over the sockets (0: read as data comes) */
  double rates[8];  /* m2m: one phase per rate (per member, Hz; 0 = saturation) */
  int nrates;
} o = {"127.0.0.1", 0, "/echo", M_ECHO, 100, 1, 64, 5, 1, 0, 0, 0, 0, 0, 0, 10, 60, 256, 1, 0.3, 60, 2, 0, ""};

/* ---------- small helpers ---------- */
static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
static double cpu_self_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
/* CPU seconds of the listed server processes (all their threads), from /proc/<pid>/stat */
static double cpu_pids_s(void) {
  if (!o.pids[0]) return -1;
  double total = 0;
  long hz = sysconf(_SC_CLK_TCK);
  char list[512];
  snprintf(list, sizeof list, "%s", o.pids);
  for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
    char fn[64], line[2048];
    snprintf(fn, sizeof fn, "/proc/%s/stat", p);
    FILE *f = fopen(fn, "r");
    if (!f) continue;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = 0;
    char *s = strrchr(line, ')');
    if (!s) continue;
    unsigned long ut = 0, st = 0;
    /* after ")": state is field 3; utime 14, stime 15 */
    if (sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) total += (double)(ut + st) / hz;
  }
  return total;
}
/* busy seconds of one CPU (all processes) from /proc/stat: shows whether anything else ran on the server's core */
static int server_core = -1;
static double core_busy_s(void) {
  if (server_core < 0) return -1;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  char line[512], want[16];
  snprintf(want, sizeof want, "cpu%d ", server_core);
  double busy = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, want, strlen(want)) != 0) continue;
    unsigned long long u, n, s, idle, io, irq, sirq, steal;
    if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &s, &idle, &io, &irq, &sirq, &steal) == 8)
      busy = (double)(u + n + s + irq + sirq + steal) / sysconf(_SC_CLK_TCK);
    break;
  }
  fclose(f);
  return busy;
}
static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
}

/* ---------- SHA-1 and base64, for the handshake's Sec-WebSocket-Accept ---------- */
static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t blk[128];
  size_t full = len / 64 * 64, rest = len - full;
  for (size_t off = 0;; off += 64) {
    const uint8_t *b;
    int last = 0, nblk = 1;
    if (off < full) b = msg + off;
    else {
      memset(blk, 0, sizeof blk);
      memcpy(blk, msg + full, rest);
      blk[rest] = 0x80;
      nblk = rest >= 56 ? 2 : 1;
      uint64_t bits = (uint64_t)len * 8;
      for (int i = 0; i < 8; i++) blk[nblk * 64 - 1 - i] = bits >> (8 * i);
      b = blk;
      last = 1;
    }
    for (int k = 0; k < nblk; k++, b += 64) {
      uint32_t w[80], a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
      for (int i = 0; i < 16; i++) w[i] = (uint32_t)b[4 * i] << 24 | b[4 * i + 1] << 16 | b[4 * i + 2] << 8 | b[4 * i + 3];
      for (int i = 16; i < 80; i++) {
        uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
        w[i] = x << 1 | x >> 31;
      }
      for (int i = 0; i < 80; i++) {
        uint32_t f, kk;
        if (i < 20) f = (bb & c) | (~bb & d), kk = 0x5A827999;
        else if (i < 40) f = bb ^ c ^ d, kk = 0x6ED9EBA1;
        else if (i < 60) f = (bb & c) | (bb & d) | (c & d), kk = 0x8F1BBCDC;
        else f = bb ^ c ^ d, kk = 0xCA62C1D6;
        uint32_t t = (a << 5 | a >> 27) + f + e + kk + w[i];
        e = d, d = c, c = bb << 30 | bb >> 2, bb = a, a = t;
      }
      h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
    }
    if (last) break;
  }
  for (int i = 0; i < 5; i++) out[4 * i] = h[i] >> 24, out[4 * i + 1] = h[i] >> 16, out[4 * i + 2] = h[i] >> 8, out[4 * i + 3] = h[i];
}
static void b64(const uint8_t *in, int n, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int j = 0;
  for (int i = 0; i < n; i += 3) {
    uint32_t v = in[i] << 16 | (i + 1 < n ? in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
    out[j++] = t[v >> 18 & 63];
    out[j++] = t[v >> 12 & 63];
    out[j++] = i + 1 < n ? t[v >> 6 & 63] : '=';
    out[j++] = i + 2 < n ? t[v & 63] : '=';
  }
  out[j] = 0;
}

/* ---------- latency histogram (log-linear, ~3 % resolution, ns) ---------- */
#define HBUCKETS 2048
static uint64_t hist[HBUCKETS], hcount, hmax;
static int hidx(uint64_t v) {
  if (v < 64) return (int)v;
  int e = 63 - __builtin_clzll(v);
  int shift = e - 5;
  return 64 + (e - 6) * 32 + (int)((v >> shift) - 32);
}
static uint64_t hval(int i) {
  if (i < 64) return i;
  int e = (i - 64) / 32 + 6, m = (i - 64) % 32 + 32, shift = e - 5;
  return ((uint64_t)m << shift) + ((1ull << shift) >> 1);
}
static void hadd(uint64_t v) {
  int i = hidx(v);
  if (i >= HBUCKETS) i = HBUCKETS - 1;
  hist[i]++;
  hcount++;
  if (v > hmax) hmax = v;
}
static double hpct(double p) {
  if (!hcount) return -1;
  uint64_t want = (uint64_t)(p * hcount), seen = 0;
  if (want >= hcount) want = hcount - 1;
  for (int i = 0; i < HBUCKETS; i++) {
    seen += hist[i];
    if (seen > want) return hval(i) / 1000.0;
  }
  return hmax / 1000.0;
}

/* ---------- connections ---------- */
enum { ST_FREE, ST_CONNECTING, ST_HS, ST_SIO_OPEN, ST_SIO_CONNECT, ST_WELCOME, ST_READY, ST_DEAD };
typedef struct {
  uint8_t *p;
  size_t len, cap;
} buf_t;
typedef struct {
  int fd;
  uint8_t state, role, wantout;
  buf_t out;
  char *hs; /* handshake response, freed when done */
  int hslen;
  char key[32];
  /* frame parser */
  uint8_t hdr[14], hlen, hneed, op, fin;
  uint64_t remain, flen;
  uint8_t *keep;
  uint32_t keeplen, keepcap;
  /* echo */
  uint64_t *fifo;
  uint32_t fhead, fcount;
  uint64_t count_meas; /* echoes (echo) or deliveries (fanout) in the measured window */
  int tosend;          /* batched: frames owed */
  /* m2m */
  uint32_t room;
  int64_t m_sent, m_acked; /* this phase: own updates sent; deliveries of them to others received */
  uint8_t queued;          /* in the saturation send queue */
} conn_t;

static conn_t *cs;
static int nconns; /* total incl. publisher */
static int ep;
static int pending_hs, ready_count, dead_count, connect_errors, hs_errors, closed_early, started;
static uint64_t t_connect0, t_all_ready, last_rx;
static int measuring, sending;
static uint64_t msgs_meas, msgs_total, bytes_meas;
static uint8_t *echo_frame;
static size_t echo_frame_len, echo_payload_len;
static uint8_t scratch[1 << 18];
static uint8_t wscratch[1 << 20];
static uint32_t mask_key;
/* fanout */
static uint64_t pub_sent, pub_sent_meas, pub_outstanding, deliveries_total, pub_seen;
static uint64_t reads_meas, writes_meas; /* read() and write() calls in the measured window: the client's syscalls */
static uint64_t t_pub0;

static void buf_add(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    b->p = realloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void set_out(conn_t *c, int want) {
  if (c->wantout == want || c->state == ST_DEAD) return;
  c->wantout = want;
  struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - cs)};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}
static void kill_conn(conn_t *c, int why) {
  if (c->state == ST_DEAD) return;
  if (c->state < ST_READY && c->state != ST_FREE) pending_hs--;
  if (c->state == ST_READY) ready_count--;
  if (why == 1) connect_errors++;
  else if (why == 2) hs_errors++;
  else if (why == 3 && started) closed_early++;
  c->state = ST_DEAD;
  dead_count++;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->hs);
  c->hs = NULL;
}
static void try_write(conn_t *c, const uint8_t *d, size_t n) {
  if (c->state == ST_DEAD) return;
  if (c->out.len) {
    buf_add(&c->out, d, n);
    return;
  }
  ssize_t w = write(c->fd, d, n);
  if (measuring) writes_meas++;
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      kill_conn(c, 3);
      return;
    }
    w = 0;
  }
  if ((size_t)w < n) {
    buf_add(&c->out, d + w, n - w);
    set_out(c, 1);
  }
}
static void flush_out(conn_t *c) {
  while (c->out.len) {
    ssize_t w = write(c->fd, c->out.p, c->out.len);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      kill_conn(c, 3);
      return;
    }
    memmove(c->out.p, c->out.p + w, c->out.len - w);
    c->out.len -= w;
  }
  set_out(c, 0);
}
/* a masked client frame into dst; returns its length */
static size_t ws_frame(uint8_t *dst, int op, const uint8_t *payload, size_t n) {
  size_t h = 0;
  dst[h++] = 0x80 | op;
  if (n < 126) dst[h++] = 0x80 | n;
  else if (n < 65536) dst[h++] = 0x80 | 126, dst[h++] = n >> 8, dst[h++] = n & 255;
  else {
    dst[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) dst[h++] = (uint64_t)n >> (8 * i);
  }
  uint8_t m[4] = {mask_key >> 24, mask_key >> 16, mask_key >> 8, mask_key};
  memcpy(dst + h, m, 4);
  h += 4;
  for (size_t i = 0; i < n; i++) dst[h + i] = payload[i] ^ m[i & 3];
  return h + n;
}
static void send_text(conn_t *c, const char *s) {
  uint8_t f[256];
  size_t n = ws_frame(f, 1, (const uint8_t *)s, strlen(s));
  try_write(c, f, n);
}

/* ---------- echo ---------- */
static void echo_send(conn_t *c, int k) {
  if (k <= 0 || c->state != ST_READY) return;
  uint64_t t = now_ns();
  if (o.batch && k > 1) {
    size_t per = echo_frame_len, off = 0;
    uint8_t *dst = per * k <= sizeof wscratch ? wscratch : malloc(per * k);
    for (int i = 0; i < k; i++, off += per) memcpy(dst + off, echo_frame, per);
    for (int i = 0; i < k; i++) c->fifo[(c->fhead + c->fcount++) % o.window] = t;
    try_write(c, dst, off);
    if (dst != wscratch) free(dst);
    return;
  }
  for (int i = 0; i < k && c->state == ST_READY; i++) {
    c->fifo[(c->fhead + c->fcount++) % o.window] = t;
    try_write(c, echo_frame, echo_frame_len);
  }
}

/* ---------- fanout ---------- */
static char pub_pad[70000];
/* --proto mp: the publish {"type":"publish","data":{"bt":…,"p":pad}} as MessagePack, built
   once by mp_publish_init(); a publish only writes its 8 bytes of "bt" (uint64, 0xcf) */
static uint8_t mp_pub[70100];
static size_t mp_pub_len, mp_bt_at;
static void mp_publish_init(int pad) {
  static const uint8_t head[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xa7, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0xa4, 'd', 'a', 't', 'a',
                                 0x82, 0xa2, 'b', 't', 0xcf};
  size_t n = sizeof head;
  memcpy(mp_pub, head, n);
  mp_bt_at = n;
  n += 8;
  mp_pub[n++] = 0xa1, mp_pub[n++] = 'p';
  /* the pad's str header: fixstr, str8 or str16 (pad ≤ 65 000) */
  if (pad < 32) mp_pub[n++] = 0xa0 | pad;
  else if (pad < 256) mp_pub[n++] = 0xd9, mp_pub[n++] = pad;
  else mp_pub[n++] = 0xda, mp_pub[n++] = pad >> 8, mp_pub[n++] = pad & 255;
  memcpy(mp_pub + n, pub_pad, pad);
  mp_pub_len = n + pad;
}
static void publish_one(void) {
  conn_t *c = &cs[nconns - 1];
  if (c->state != ST_READY) return;
  char body[70100];
  int n;
  uint64_t t = now_ns();
  if (o.mp) {
    for (int k = 0; k < 8; k++) mp_pub[mp_bt_at + k] = t >> (56 - 8 * k);
    n = (int)mp_pub_len;
  } else if (o.sio) n = snprintf(body, sizeof body, "42[\"publish\",{\"bt\":%llu,\"p\":\"%s\"}]", (unsigned long long)t, pub_pad);
  else n = snprintf(body, sizeof body, "{\"type\":\"publish\",\"data\":{\"bt\":%llu,\"p\":\"%s\"}}", (unsigned long long)t, pub_pad);
  mask_key = mask_key * 1103515245u + 12345u;
  size_t fl = o.mp ? ws_frame(wscratch, 2, mp_pub, n) : ws_frame(wscratch, 1, (uint8_t *)body, n);
  try_write(c, wscratch, fl);
  pub_sent++;
  pub_outstanding++;
  if (measuring) pub_sent_meas++;
}
/* glibc's memmem is vectorised: the search costs the same for a 64 B raw frame and a
   180 B edgewire envelope, so the client's cost per delivery does not depend on the
   server's framing (measured before: the client, not the server, bounded Bun fan-out). */
static int find_bt(const uint8_t *p, uint32_t n, uint64_t *out) {
  const uint8_t *at = memmem(p, n, "\"bt\":", 5);
  if (!at) return 0;
  uint64_t v = 0;
  for (const uint8_t *q = at + 5, *end = p + n; q < end && *q >= '0' && *q <= '9'; q++) v = v * 10 + (*q - '0');
  *out = v;
  return 1;
}
/* --proto mp: the key "bt" as a MessagePack fixstr (a2 62 74), then the integer the server
   re-encoded from a JS number in the smallest form that holds it (float64 above 2^53). A
   match whose next byte is no such number (the three bytes inside a larger integer, say)
   is skipped and the search goes on. */
static int find_bt_mp(const uint8_t *p, uint32_t n, uint64_t *out) {
  const uint8_t *end = p + n;
  for (const uint8_t *at; (at = memmem(p, end - p, "\xa2" "bt", 3)) != NULL; p = at + 1) {
    const uint8_t *q = at + 3;
    if (q >= end) return 0;
    int w = *q < 0x80 ? 0 : *q == 0xcc ? 1 : *q == 0xcd ? 2 : *q == 0xce ? 4 : *q == 0xcf || *q == 0xcb ? 8 : -1;
    if (w < 0) continue;
    if (q + 1 + w > end) return 0;
    uint64_t v = w ? 0 : *q;
    for (int k = 1; k <= w; k++) v = v << 8 | q[k];
    if (*q == 0xcb) {
      double d;
      memcpy(&d, &v, 8);
      v = d > 0 ? (uint64_t)d : 0;
    }
    *out = v;
    return 1;
  }
  return 0;
}

/* ---------- many-to-many ---------- */
static uint64_t m2m_sent, m2m_sent_meas, m2m_deliveries, m2m_self, m2m_foreign;
static int64_t m2m_in_flight; /* deliveries owed to the members: updates sent × (M-1), less those received */
static uint64_t m2m_rx;       /* deliveries received, every phase */
static int *sendq, sendq_len; /* saturation: members whose window has room */
static uint64_t last_paced_tick;
/* the update {"type":"publish","data":{"bt":…,"s":…,"p":pad}}: JSON text, the same bytes as a
   binary frame (--binary), or MessagePack (bt uint64 0xcf, s uint16 0xcd) */
static uint8_t m2m_mp[256];
static size_t m2m_mp_len, m2m_mp_bt, m2m_mp_s;
static void m2m_init(int pad) {
  static const uint8_t head[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xa7, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0xa4, 'd', 'a', 't', 'a',
                                 0x83, 0xa2, 'b', 't', 0xcf};
  size_t n = sizeof head;
  memcpy(m2m_mp, head, n);
  m2m_mp_bt = n;
  n += 8;
  m2m_mp[n++] = 0xa1, m2m_mp[n++] = 's', m2m_mp[n++] = 0xcd;
  m2m_mp_s = n;
  n += 2;
  m2m_mp[n++] = 0xa1, m2m_mp[n++] = 'p';
  if (pad > 31) pad = 31;
  m2m_mp[n++] = 0xa0 | pad;
  memset(m2m_mp + n, 'x', pad);
  m2m_mp_len = n + pad;
}
static int peers(void) { return o.conns - 1; }
static size_t put_uint(uint8_t *d, uint64_t v) {
  char tmp[24];
  int k = 0;
  do tmp[k++] = '0' + v % 10, v /= 10;
  while (v);
  for (int j = 0; j < k; j++) d[j] = tmp[k - 1 - j];
  return k;
}
static int64_t m2m_outstanding(conn_t *c) { return c->m_sent * peers() - c->m_acked; }
static void m2m_send(int i) {
  conn_t *c = &cs[i];
  if (c->state != ST_READY) return;
  uint8_t body[256];
  size_t n;
  uint64_t t = now_ns();
  if (o.mp) {
    memcpy(body, m2m_mp, m2m_mp_len);
    for (int k = 0; k < 8; k++) body[m2m_mp_bt + k] = t >> (56 - 8 * k);
    body[m2m_mp_s] = i >> 8, body[m2m_mp_s + 1] = i & 255;
    n = m2m_mp_len;
  } else {
    /* {"type":"publish","data":{"bt":T,"s":I,"p":"pad"}}, written by hand (snprintf was 1.3 % of the client) */
    static const char head[] = "{\"type\":\"publish\",\"data\":{\"bt\":", mid[] = ",\"s\":", tail[] = ",\"p\":\"";
    n = 0;
    memcpy(body, head, sizeof head - 1), n += sizeof head - 1;
    n += put_uint(body + n, t);
    memcpy(body + n, mid, sizeof mid - 1), n += sizeof mid - 1;
    n += put_uint(body + n, (uint64_t)i);
    memcpy(body + n, tail, sizeof tail - 1), n += sizeof tail - 1;
    size_t pad = strlen(pub_pad);
    memcpy(body + n, pub_pad, pad), n += pad;
    memcpy(body + n, "\"}}", 3), n += 3;
  }
  mask_key = mask_key * 1103515245u + 12345u;
  size_t fl = ws_frame(wscratch, o.mp || o.binary ? 2 : 1, body, n);
  try_write(c, wscratch, fl);
  c->m_sent++;
  m2m_in_flight += peers();
  m2m_sent++;
  if (measuring) m2m_sent_meas++;
}
/* An update's data is the frame's last value on every target (a relay's publish {type,data}, edgewire's
   broadcast {type,room,from,data} or [1,from,data]), so "bt" is searched from the end: ~45 bytes instead of
   a forward memmem over the envelope (measured: memmem was 14 % of the client's CPU at 2.4 M deliveries/s).
   "s" follows "bt" directly (every server keeps the order); elsewhere it is searched for. */
static const uint8_t *rfind(const uint8_t *p, size_t n, const char *needle, size_t k) {
  if (n < k) return NULL;
  for (const uint8_t *q = p + n - k;; q--) {
    if (*q == (uint8_t)needle[0] && memcmp(q, needle, k) == 0) return q;
    if (q == p) return NULL;
  }
}
/* a MessagePack unsigned integer at q (fixint, uint8-64, or float64 as JSON numbers above 2^53 become); its end */
static const uint8_t *mp_uint(const uint8_t *q, const uint8_t *end, uint64_t *out) {
  if (q >= end) return NULL;
  int w = *q < 0x80 ? 0 : *q == 0xcc ? 1 : *q == 0xcd ? 2 : *q == 0xce ? 4 : *q == 0xcf || *q == 0xcb ? 8 : -1;
  if (w < 0 || q + 1 + w > end) return NULL;
  uint64_t v = w ? 0 : *q;
  for (int k = 1; k <= w; k++) v = v << 8 | q[k];
  if (*q == 0xcb) {
    double d;
    memcpy(&d, &v, 8);
    v = d > 0 ? (uint64_t)d : 0;
  }
  *out = v;
  return q + 1 + w;
}
static const uint8_t *json_uint(const uint8_t *q, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  const uint8_t *start = q;
  for (; q < end && *q >= '0' && *q <= '9'; q++) v = v * 10 + (*q - '0');
  *out = v;
  return q > start ? q : NULL;
}
static int m2m_parse(const uint8_t *p, uint32_t n, uint64_t *bt, int *s) {
  const uint8_t *end = p + n, *q, *at;
  uint64_t v;
  if (o.mp) {
    if (!(at = rfind(p, n, "\xa2" "bt", 3)) || !(q = mp_uint(at + 3, end, bt))) return 0;
    if (!(q + 2 <= end && q[0] == 0xa1 && q[1] == 's')) {
      if (!(at = memmem(q, end - q, "\xa1s", 2))) return 0;
      q = at;
    }
    if (!mp_uint(q + 2, end, &v)) return 0;
  } else {
    if (!(at = rfind(p, n, "\"bt\":", 5)) || !(q = json_uint(at + 5, end, bt))) return 0;
    if (!(q + 5 <= end && memcmp(q, ",\"s\":", 5) == 0)) {
      if (!(at = memmem(q, end - q, "\"s\":", 4))) return 0;
      q = at - 1;
    }
    if (!json_uint(q + 5, end, &v)) return 0;
  }
  *s = (int)v;
  return 1;
}
static void sendq_push(int i) {
  if (cs[i].queued) return;
  cs[i].queued = 1;
  sendq[sendq_len++] = i;
}
/* a delivery of member s's update to member c */
static void m2m_delivered(conn_t *c, int s, uint64_t bt, uint64_t t) {
  if (s < 0 || s >= nconns || cs[s].room != c->room) {
    m2m_foreign++; /* another room's update, or no sender: the server mixed rooms */
    return;
  }
  if (&cs[s] == c) {
    m2m_self++; /* its own update back: the server did work a broadcast "to the others" does not */
    return;
  }
  cs[s].m_acked++;
  m2m_in_flight--;
  m2m_rx++;
  if (o.rate == 0 && sending && m2m_outstanding(&cs[s]) < (int64_t)o.window * peers()) sendq_push(s);
  if (bt < t_pub0) return; /* sent in an earlier phase */
  m2m_deliveries++;
  if (measuring) {
    hadd(t > bt ? t - bt : 0);
    msgs_meas++;
    c->count_meas++;
  }
}
static void m2m_sat_tick(uint64_t t) {
  (void)t;
  if (!sending) return;
  /* a member whose window has room sends until it is full again */
  for (int k = 0; k < sendq_len; k++) {
    int i = sendq[k];
    cs[i].queued = 0;
    while (cs[i].state == ST_READY && m2m_outstanding(&cs[i]) < (int64_t)o.window * peers()) m2m_send(i);
  }
  sendq_len = 0;
}
static void m2m_paced_tick(uint64_t t) {
  if (!sending || t - last_paced_tick < 200000) return; /* every 0.2 ms at most: sends are due every ms or so */
  last_paced_tick = t;
  double periods = (double)(t - t_pub0) * o.rate / 1e9;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &cs[i];
    if (c->state != ST_READY) continue;
    /* member i's k-th update is due at (k + 1 - i/N) periods: the members' sends spread evenly */
    int64_t due = (int64_t)(periods + (double)i / nconns);
    /* a server far behind: no more than 1 000 updates per member in flight (latency shows it anyway) */
    for (int budget = 100; c->m_sent < due && budget > 0 && m2m_outstanding(c) < 1000 * (int64_t)peers(); budget--) m2m_send(i);
  }
}

/* ---------- incoming frames ---------- */
static void became_ready(conn_t *c) {
  c->state = ST_READY;
  pending_hs--;
  ready_count++;
}
static uint64_t t_read; /* m2m: when the bytes being parsed were read (one clock read per read, not per frame) */
static void on_message(conn_t *c, int op, const uint8_t *p, uint32_t kept, uint64_t len) {
  uint64_t t = o.mode == M_M2M ? t_read : now_ns();
  if (op == 8) {
    kill_conn(c, 3);
    return;
  }
  if (op == 9) { /* ping: answer with a pong carrying the same bytes */
    uint8_t f[160];
    try_write(c, f, ws_frame(f, 10, p, kept > 125 ? 125 : kept));
    return;
  }
  if (op == 10) return;
  if (o.sio) {
    if (len == 1 && kept == 1 && p[0] == '2') { /* engine.io ping */
      send_text(c, "3");
      return;
    }
    if (c->state == ST_SIO_OPEN) {
      if (kept && p[0] == '0') {
        send_text(c, "40");
        c->state = ST_SIO_CONNECT;
      }
      return;
    }
    if (c->state == ST_SIO_CONNECT) {
      if (kept >= 2 && p[0] == '4' && p[1] == '0') {
        if (o.welcome) c->state = ST_WELCOME;
        else became_ready(c);
      } else if (kept >= 2 && p[0] == '4' && p[1] == '4') kill_conn(c, 2);
      return;
    }
  }
  if (c->state == ST_WELCOME) {
    became_ready(c);
    last_rx = t;
    return;
  }
  if (c->state != ST_READY) return;
  if (o.mode == M_ECHO) {
    if (!c->fcount) return;
    uint64_t sent = c->fifo[c->fhead];
    c->fhead = (c->fhead + 1) % o.window;
    c->fcount--;
    msgs_total++;
    if (measuring) {
      hadd(t - sent);
      msgs_meas++;
      bytes_meas += len;
      c->count_meas++;
    }
    if (sending) {
      if (o.batch) c->tosend++;
      else echo_send(c, 1);
    }
  } else if (o.mode == M_FANOUT) {
    uint64_t bt;
    /* mp: deliveries are binary; a text frame (JSON) is other traffic, never a delivery */
    if (!(o.mp ? op == 2 && find_bt_mp(p, kept, &bt) : find_bt(p, kept, &bt))) {
      last_rx = t; /* presence and other room traffic: not yet quiet */
      return;
    }
    if (c->role) {
      pub_seen++;
      if (pub_outstanding) pub_outstanding--;
      return;
    }
    if (bt < t_pub0) return; /* published in an earlier phase: late, not counted in this one */
    deliveries_total++;
    if (measuring) {
      hadd(t > bt ? t - bt : 0);
      msgs_meas++;
      c->count_meas++;
    }
  } else if (o.mode == M_M2M) {
    uint64_t bt;
    int s;
    /* mp: deliveries are binary; a text frame (JSON) is other traffic */
    if ((o.mp && op != 2) || !m2m_parse(p, kept, &bt, &s)) {
      last_rx = t; /* presence and other room traffic */
      return;
    }
    m2m_delivered(c, s, bt, t);
  }
}
static void on_bytes(conn_t *c, const uint8_t *d, size_t n) {
  uint32_t keepmax = o.mode == M_FANOUT || o.mode == M_M2M || o.sio || c->state != ST_READY ? 8192 : 128;
  size_t i = 0;
  while (i < n && c->state != ST_DEAD) {
    if (c->hneed == 0 || c->hlen < c->hneed) { /* header */
      if (c->hneed == 0) c->hneed = 2;
      c->hdr[c->hlen++] = d[i++];
      if (c->hlen == 2) {
        int l7 = c->hdr[1] & 127;
        c->hneed = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + (c->hdr[1] & 128 ? 4 : 0);
      }
      if (c->hlen < c->hneed) continue;
      int l7 = c->hdr[1] & 127;
      uint64_t len = l7;
      if (l7 == 126) len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
      else if (l7 == 127) {
        len = 0;
        for (int k = 0; k < 8; k++) len = len << 8 | c->hdr[2 + k];
      }
      int op = c->hdr[0] & 15;
      c->fin = c->hdr[0] >> 7;
      if (op != 0) {
        c->op = op;
        c->flen = 0;
        c->keeplen = 0;
      }
      c->remain = len;
      c->flen += len;
      if (len > 0) continue;
    } else { /* payload */
      size_t take = n - i < c->remain ? n - i : c->remain;
      if (c->keeplen == 0 && take == c->remain && c->fin && c->op == (c->hdr[0] & 15)) {
        /* the whole (unfragmented) payload is in this read: hand it over in place, no copy */
        uint32_t k = take < keepmax ? (uint32_t)take : keepmax;
        i += take;
        c->remain = 0;
        c->hlen = 0;
        c->hneed = 0;
        on_message(c, c->op, d + i - take, k, c->flen);
        continue;
      }
      if (c->keeplen < keepmax) {
        uint32_t k = take < keepmax - c->keeplen ? (uint32_t)take : keepmax - c->keeplen;
        if (c->keeplen + k > c->keepcap) {
          c->keepcap = c->keeplen + k < 256 ? 256 : keepmax;
          c->keep = realloc(c->keep, c->keepcap);
        }
        memcpy(c->keep + c->keeplen, d + i, k);
        c->keeplen += k;
      }
      i += take;
      c->remain -= take;
      if (c->remain) continue;
    }
    /* a frame is complete */
    c->hlen = 0;
    c->hneed = 0;
    if (c->fin || c->op >= 8) on_message(c, c->op, c->keep, c->keeplen, c->flen);
  }
}
static int hdr_value(const char *resp, const char *name, char *out, int outn) {
  size_t nl = strlen(name);
  for (const char *p = strstr(resp, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
      const char *v = p + 3 + nl;
      while (*v == ' ') v++;
      int k = 0;
      while (v[k] && v[k] != '\r' && k < outn - 1) out[k] = v[k], k++;
      out[k] = 0;
      return 1;
    }
  }
  return 0;
}
static void on_handshake(conn_t *c, const uint8_t *d, size_t n) {
  if (!c->hs) c->hs = malloc(4097);
  size_t room = 4096 - c->hslen, take = n < room ? n : room;
  memcpy(c->hs + c->hslen, d, take);
  c->hslen += take;
  c->hs[c->hslen] = 0;
  char *end = strstr(c->hs, "\r\n\r\n");
  if (!end) {
    if (c->hslen >= 4096) kill_conn(c, 2);
    return;
  }
  size_t head = end + 4 - c->hs;
  char accept[64] = "", want[64], cat[128];
  uint8_t dig[20];
  snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
  sha1((uint8_t *)cat, strlen(cat), dig);
  b64(dig, 20, want);
  if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0 || !hdr_value(c->hs, "sec-websocket-accept", accept, sizeof accept) ||
      strcmp(accept, want) != 0) {
    if (hs_errors < 3) {
      *end = 0;
      logf_("{\"event\":\"handshake_refused\",\"response\":\"%.120s\"}", c->hs);
    }
    kill_conn(c, 2);
    return;
  }
  /* mp: a server that did not pick the subprotocol would read MessagePack as something else;
     fail here, where the log says why, not later as a run with no deliveries */
  char chosen[64] = "";
  if (o.mp && (!hdr_value(c->hs, "sec-websocket-protocol", chosen, sizeof chosen) || strcmp(chosen, MP_SUBPROTOCOL) != 0)) {
    if (hs_errors < 3) logf_("{\"event\":\"subprotocol_refused\",\"offered\":\"%s\",\"chosen\":\"%s\"}", MP_SUBPROTOCOL, chosen);
    kill_conn(c, 2);
    return;
  }
  /* bytes after the response head are frames already (a welcome) */
  size_t extra = c->hslen - head;
  uint8_t tmp[4096];
  memcpy(tmp, c->hs + head, extra);
  free(c->hs);
  c->hs = NULL;
  if (o.sio) c->state = ST_SIO_OPEN;
  else if (o.welcome) c->state = ST_WELCOME;
  else became_ready(c);
  if (extra) on_bytes(c, tmp, extra);
  if (take < n) on_bytes(c, d + take, n - take);
}

/* m2m: "{}" in --path is the member's room index */
static const char *room_path(conn_t *c) {
  static char path[600];
  const char *at = o.mode == M_M2M ? strstr(o.path, "{}") : NULL;
  if (!at) return o.path;
  snprintf(path, sizeof path, "%.*s%u%s", (int)(at - o.path), o.path, c->room, at + 2);
  return path;
}
static void start_conn(int i) {
  conn_t *c = &cs[i];
  memset(c, 0, sizeof *c);
  c->role = o.mode == M_FANOUT && i == nconns - 1;
  c->room = o.mode == M_M2M ? (uint32_t)(i / o.conns) : 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    c->state = ST_DEAD;
    c->fd = -1;
    connect_errors++;
    dead_count++;
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o.src_ips > 1) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
    src.sin_addr.s_addr = htonl(0x7f000001 + (i % o.src_ips));
    bind(fd, (struct sockaddr *)&src, sizeof src);
  }
  int port = o.nports > 1 ? (c->role ? o.ports[0] : o.ports[i % o.nports]) : o.port;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, o.host, &a.sin_addr);
  c->fd = fd;
  c->state = ST_CONNECTING;
  pending_hs++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
  c->wantout = 1;
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) kill_conn(c, 1);
}
static void send_upgrade(conn_t *c) {
  uint8_t rnd[16];
  for (int k = 0; k < 16; k++) rnd[k] = rand();
  b64(rnd, 16, c->key);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: edgewire-loadgen\r\n%s\r\n",
                   room_path(c), o.host, o.port, c->key, o.mp ? "Sec-WebSocket-Protocol: " MP_SUBPROTOCOL "\r\n" : "");
  c->state = ST_HS;
  try_write(c, (uint8_t *)req, n);
}

static void handle_event(struct epoll_event *e) {
  conn_t *c = &cs[e->data.u32];
  if (c->state == ST_DEAD) return;
  if (c->state == ST_CONNECTING) {
    if (e->events & (EPOLLERR | EPOLLHUP)) {
      kill_conn(c, 1);
      return;
    }
    if (e->events & EPOLLOUT) {
      int err = 0;
      socklen_t l = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
      if (err) {
        kill_conn(c, 1);
        return;
      }
      set_out(c, 0);
      send_upgrade(c);
    }
    return;
  }
  if (e->events & EPOLLOUT) flush_out(c);
  if (c->state == ST_DEAD) return;
  if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    ssize_t r = read(c->fd, scratch, sizeof scratch);
    if (measuring) reads_meas++;
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
      kill_conn(c, c->state == ST_HS ? 2 : 3);
      return;
    }
    if (r < 0) return;
    if (o.mode == M_M2M) t_read = now_ns();
    if (c->state == ST_HS) on_handshake(c, scratch, r);
    else on_bytes(c, scratch, r);
    if (o.batch && c->tosend) {
      int k = c->tosend;
      c->tosend = 0;
      echo_send(c, k);
    }
  }
}

/* run the loop until `until` (ns) or until stop() says so; `tick` runs every pass */
static void loop_until(uint64_t until, int (*stop)(void), void (*tick)(uint64_t)) {
  struct epoll_event evs[1024];
  static uint64_t round_start, round_rx;
  static double rx_rate; /* deliveries per second, smoothed over passes */
  for (;;) {
    uint64_t t = now_ns();
    /* m2m saturation: a pause between passes over the sockets, so a read takes every frame a socket got
       meanwhile. Read as they come, a server that writes each frame on its own (Node, Deno) costs the client one
       read() per delivery — 2-5 µs in this VM, as much as the server's own write: the client, not the server,
       would set the rate. The pause is a quarter of the server's backlog (deliveries in flight ÷ the rate they
       arrive at), at most --read-pause-us, so the server never runs dry while the client sleeps. */
    if (tick == m2m_sat_tick && o.read_pause_us > 0) {
      if (t > round_start && round_start) {
        double rate = (double)(m2m_rx - round_rx) * 1e9 / (double)(t - round_start);
        rx_rate = rx_rate ? 0.8 * rx_rate + 0.2 * rate : rate;
      }
      double backlog_ns = rx_rate > 0 ? (double)m2m_in_flight * 1e9 / rx_rate : 0;
      double pause = backlog_ns / 4;
      if (pause > o.read_pause_us * 1000) pause = o.read_pause_us * 1000;
      if (pause >= 20000) {
        struct timespec ts = {0, (long)pause};
        nanosleep(&ts, NULL);
        t = now_ns();
      }
      round_start = t;
      round_rx = m2m_rx;
    }
    if (t >= until || (stop && stop())) return;
    if (tick) tick(t);
    int timeout = 1;
    if (!tick) {
      uint64_t left = (until - t) / 1000000;
      timeout = left > 50 ? 50 : (int)left + 1;
    }
    int n = epoll_wait(ep, evs, 1024, timeout);
    for (int k = 0; k < n; k++) handle_event(&evs[k]);
  }
}

static int next_to_start;
static int all_connected(void) { return next_to_start >= nconns && pending_hs == 0; }
static void connect_tick(uint64_t t) {
  (void)t;
  while (next_to_start < nconns && pending_hs < o.max_pending) {
    /* fanout: the publisher connects last, once every subscriber is in */
    if (o.mode == M_FANOUT && next_to_start == nconns - 1 && pending_hs > 0) break;
    start_conn(next_to_start++);
  }
}
static uint64_t settle_since;
static int quiet(void) { return now_ns() - last_rx > (uint64_t)(o.settle * 1e9); }
static void burst_tick(uint64_t t) {
  (void)t;
  while (sending && pub_outstanding < (uint64_t)o.window && cs[nconns - 1].state == ST_READY) publish_one();
}
static void paced_tick(uint64_t t) {
  if (!sending) return;
  uint64_t due = (uint64_t)((double)(t - t_pub0) * o.rate / 1e9) + 1;
  int budget = 1000;
  while (pub_sent < due && budget-- > 0 && pub_outstanding < 100000) publish_one();
}
static void echo_tick(uint64_t t) { (void)t; }

static int drained(void) {
  if (o.mode == M_ECHO) {
    for (int i = 0; i < nconns; i++)
      if (cs[i].state == ST_READY && cs[i].fcount) return 0;
    return 1;
  }
  if (o.mode == M_M2M) {
    for (int i = 0; i < nconns; i++)
      if (cs[i].state == ST_READY && m2m_outstanding(&cs[i]) > 0) return 0;
    return 1;
  }
  return deliveries_total >= pub_sent * (uint64_t)o.conns && pub_seen >= pub_sent;
}

static double core_busy; /* busy seconds of the server core during the last measured window */
static void run_phase(double *meas_s, double *ccpu, double *scpu) {
  void (*tick)(uint64_t) = o.mode == M_ECHO   ? echo_tick
                           : o.mode == M_M2M ? (o.rate > 0 ? m2m_paced_tick : m2m_sat_tick)
                           : o.rate > 0      ? paced_tick
                                             : burst_tick;
  sending = 1;
  t_pub0 = now_ns();
  if (o.mode == M_M2M) {
    sendq_len = 0;
    for (int i = 0; i < nconns; i++) {
      cs[i].m_sent = cs[i].m_acked = 0;
      m2m_in_flight = 0;
      cs[i].queued = 0;
      if (o.rate == 0) sendq_push(i);
    }
  }
  if (o.mode == M_ECHO)
    for (int i = 0; i < nconns; i++)
      if (cs[i].state == ST_READY) {
        if (!cs[i].fifo) cs[i].fifo = calloc(o.window, sizeof(uint64_t));
        echo_send(&cs[i], o.window);
      }
  loop_until(t_pub0 + (uint64_t)(o.warmup * 1e9), NULL, tick);
  measuring = 1;
  double cpu0 = cpu_self_s(), srv0 = cpu_pids_s(), core0 = core_busy_s();
  uint64_t m0 = now_ns();
  loop_until(m0 + (uint64_t)(o.duration * 1e9), NULL, tick);
  measuring = 0;
  *ccpu = cpu_self_s() - cpu0;
  *scpu = srv0 >= 0 ? cpu_pids_s() - srv0 : -1;
  core_busy = core0 >= 0 ? core_busy_s() - core0 : -1;
  *meas_s = (now_ns() - m0) / 1e9;
  sending = 0;
  loop_until(now_ns() + (uint64_t)(o.drain * 1e9), drained, NULL);
}

static void print_result(double connect_s, double settle_s, double meas_s, double ccpu, double scpu, const char *phase) {
  /* per-connection fairness over the measured window */
  uint64_t mn = UINT64_MAX, mx = 0;
  int counted = 0;
  for (int i = 0; i < nconns; i++) {
    if (cs[i].role || (cs[i].state != ST_READY && o.mode != M_M2M)) continue; /* m2m: a member that died counts as 0 */
    if (cs[i].count_meas < mn) mn = cs[i].count_meas;
    if (cs[i].count_meas > mx) mx = cs[i].count_meas;
    counted++;
  }
  if (!counted) mn = 0;
  printf("{\"mode\":\"%s\",\"phase\":\"%s\",\"path\":\"%s\",\"proto\":\"%s\",\"conns\":%d,\"window\":%d,\"size\":%d,\"batch\":%s,\"binary\":%s,",
         o.mode == M_ECHO ? "echo" : o.mode == M_FANOUT ? "fanout" : o.mode == M_M2M ? "m2m" : "idle", phase, o.path, o.sio ? "sio" : o.mp ? "mp" : "ws", o.conns, o.window, o.size,
         o.batch ? "true" : "false", o.binary ? "true" : "false");
  printf("\"ready\":%d,\"connect_errors\":%d,\"handshake_errors\":%d,\"closed_early\":%d,\"connect_s\":%.4f,\"connect_rate\":%.1f,",
         ready_count, connect_errors, hs_errors, closed_early, connect_s, connect_s > 0 ? ready_count / connect_s : 0);
  printf("\"seconds\":%.4f,\"msgs\":%llu,\"msgs_per_s\":%.1f,\"bytes_per_s\":%.1f,", meas_s, (unsigned long long)msgs_meas,
         meas_s > 0 ? msgs_meas / meas_s : 0, meas_s > 0 ? bytes_meas / meas_s : 0);
  printf("\"lat_us\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f,\"max\":%.1f},", hpct(0.5), hpct(0.95), hpct(0.99), hmax / 1000.0);
  printf("\"per_conn\":{\"min\":%llu,\"max\":%llu,\"fair\":%.3f},", (unsigned long long)mn, (unsigned long long)mx,
         mx ? (double)mn / mx : 0);
  printf("\"client_cpu_s\":%.4f,\"client_cpu\":%.3f,\"server_cpu_s\":%.4f,\"server_cpu\":%.3f,", ccpu, meas_s > 0 ? ccpu / meas_s : 0,
         scpu, scpu >= 0 && meas_s > 0 ? scpu / meas_s : -1);
  printf("\"server_us_per_msg\":%.4f,\"server_core_busy\":%.3f", scpu >= 0 && msgs_meas ? scpu * 1e6 / msgs_meas : -1,
         core_busy >= 0 && meas_s > 0 ? core_busy / meas_s : -1);
  if (o.mode == M_FANOUT) {
    uint64_t expected = pub_sent * (uint64_t)o.conns;
    printf(",\"fanout\":{\"members\":%d,\"rate\":%.1f,\"published\":%llu,\"published_measured\":%llu,\"deliveries\":%llu,"
           "\"expected\":%llu,\"delivered_ratio\":%.4f,\"settle_s\":%.3f}",
           o.conns, o.rate, (unsigned long long)pub_sent, (unsigned long long)pub_sent_meas, (unsigned long long)deliveries_total,
           (unsigned long long)expected, expected ? (double)deliveries_total / expected : 0, settle_s);
  }
  if (o.mode == M_M2M) {
    uint64_t expected = 0;
    int alive = 0;
    for (int i = 0; i < nconns; i++) {
      expected += (uint64_t)cs[i].m_sent * peers();
      alive += cs[i].state == ST_READY;
    }
    printf(",\"m2m\":{\"rooms\":%d,\"members\":%d,\"rate\":%.1f,\"window\":%d,\"alive\":%d,\"sent\":%llu,\"sent_measured\":%llu,"
           "\"deliveries\":%llu,\"expected\":%llu,\"delivered_ratio\":%.4f,\"self_deliveries\":%llu,\"foreign_deliveries\":%llu,"
           "\"settle_s\":%.3f,\"client_reads\":%llu,\"client_writes\":%llu}",
           o.rooms, o.conns, o.rate, o.window, alive, (unsigned long long)m2m_sent, (unsigned long long)m2m_sent_meas,
           (unsigned long long)m2m_deliveries, (unsigned long long)expected, expected ? (double)m2m_deliveries / expected : 0,
           (unsigned long long)m2m_self, (unsigned long long)m2m_foreign, settle_s, (unsigned long long)reads_meas,
           (unsigned long long)writes_meas);
  }
  printf("}\n");
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr,
          "loadgen --port P | --ports P1,P2,… [--host H] [--path /echo] [--mode echo|fanout|idle] [--conns N] [--window W]\n"
          "        [--size S] [--duration s] [--warmup s] [--rate R] [--batch] [--binary] [--proto ws|sio|mp]\n"
          "        [--welcome] [--hold s] [--max-pending K] [--src-ips K] [--settle s] [--settle-max s]\n"
          "        [--connect-timeout s] [--drain s] [--then-paced fraction] [--server-pids a,b] [--server-core N]\n"
          "        [--mode m2m --rooms R --conns M --rates 0,20,60 --read-pause-us U]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
    if (ARG("--host")) o.host = v;
    else if (ARG("--port")) o.port = atoi(v);
    else if (ARG("--ports")) {
      for (const char *t = v; *t && o.nports < 16; t = strchr(t, ',') ? strchr(t, ',') + 1 : t + strlen(t))
        o.ports[o.nports++] = atoi(t);
      if (o.nports) o.port = o.ports[0];
    }
    else if (ARG("--path")) o.path = v;
    else if (ARG("--mode"))
      o.mode = !strcmp(v, "echo") ? M_ECHO : !strcmp(v, "fanout") ? M_FANOUT : !strcmp(v, "idle") ? M_IDLE : !strcmp(v, "m2m") ? M_M2M : -1;
    else if (ARG("--rooms")) o.rooms = atoi(v);
    else if (ARG("--read-pause-us")) o.read_pause_us = atof(v);
    else if (ARG("--rates")) {
      for (const char *t = v; *t && o.nrates < 8; t = strchr(t, ',') ? strchr(t, ',') + 1 : t + strlen(t))
        o.rates[o.nrates++] = atof(t);
    }
    else if (ARG("--conns")) o.conns = atoi(v);
    else if (ARG("--window")) o.window = atoi(v);
    else if (ARG("--size")) o.size = atoi(v);
    else if (ARG("--duration")) o.duration = atof(v);
    else if (ARG("--warmup")) o.warmup = atof(v);
    else if (ARG("--rate")) o.rate = atof(v);
    else if (ARG("--hold")) o.hold = atof(v);
    else if (ARG("--max-pending")) o.max_pending = atoi(v);
    else if (ARG("--src-ips")) o.src_ips = atoi(v);
    else if (ARG("--settle")) o.settle = atof(v);
    else if (ARG("--settle-max")) o.settle_max = atof(v);
    else if (ARG("--connect-timeout")) o.connect_timeout = atof(v);
    else if (ARG("--drain")) o.drain = atof(v);
    else if (ARG("--then-paced")) o.then_paced = atof(v);
    else if (ARG("--server-core")) server_core = atoi(v);
    else if (ARG("--proto")) {
      o.sio = !strcmp(v, "sio");
      o.mp = !strcmp(v, "mp");
      if (!o.sio && !o.mp && strcmp(v, "ws") != 0) usage(); /* a typo must not quietly measure ws */
    }
    else if (ARG("--server-pids")) snprintf(o.pids, sizeof o.pids, "%s", v);
    else if (!strcmp(a, "--batch")) o.batch = 1;
    else if (!strcmp(a, "--binary")) o.binary = 1;
    else if (!strcmp(a, "--welcome")) o.welcome = 1;
    else usage();
  }
  if (!o.port || o.mode < 0 || o.conns < 1 || o.window < 1 || o.size < 0 || o.size > 65536) usage();
  signal(SIGPIPE, SIG_IGN);
  srand((unsigned)now_ns());
  mask_key = (uint32_t)rand() | 1;
  if (o.rooms < 1) o.rooms = 1;
  if (o.mode == M_M2M && (o.conns < 2 || o.rooms * o.conns > 65535)) usage(); /* a member index is a uint16 in MessagePack */
  if (o.mode == M_M2M && !o.nrates) o.rates[o.nrates++] = o.rate;
  nconns = o.mode == M_M2M ? o.rooms * o.conns : o.conns + (o.mode == M_FANOUT ? 1 : 0);
  if (o.src_ips < 1) o.src_ips = 1;
  if (o.src_ips == 1 && nconns > 25000) o.src_ips = nconns / 25000 + 1;
  struct rlimit rl = {(rlim_t)nconns + 256, (rlim_t)nconns + 256};
  struct rlimit cur;
  getrlimit(RLIMIT_NOFILE, &cur);
  if (cur.rlim_cur < rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &rl) != 0) logf_("{\"event\":\"warning\",\"message\":\"cannot raise RLIMIT_NOFILE\"}");
  cs = calloc(nconns, sizeof *cs);
  ep = epoll_create1(EPOLL_CLOEXEC);

  /* the echo frame: built and masked once */
  if (o.mode == M_ECHO) {
    uint8_t *payload = malloc(o.size + 64);
    size_t pl = 0;
    if (o.sio) pl = sprintf((char *)payload, "42[\"echo\",\"");
    for (int k = 0; k < o.size; k++) payload[pl++] = 'a' + k % 26;
    if (o.sio) payload[pl++] = '"', payload[pl++] = ']';
    echo_payload_len = pl;
    echo_frame = malloc(pl + 14);
    echo_frame_len = ws_frame(echo_frame, o.binary && !o.sio ? 2 : 1, payload, pl);
    free(payload);
  } else if (o.mode == M_FANOUT) {
    int pad = o.size - 48;
    if (pad < 1) pad = 1;
    if (pad > 65000) pad = 65000;
    memset(pub_pad, 'x', pad);
    if (o.mp) mp_publish_init(pad);
  } else if (o.mode == M_M2M) {
    /* the JSON update is 45 B, the digits of bt (13-14 here: ns since boot) and of s, and the pad: --size in all.
       MessagePack carries the same values in fewer bytes (40 B and the pad). */
    int sdigits = nconns > 10000 ? 5 : nconns > 1000 ? 4 : nconns > 100 ? 3 : 2;
    int pad = o.size - 45 - 14 - sdigits;
    if (pad < 1) pad = 1;
    if (pad > 31) pad = 31;
    memset(pub_pad, 'x', pad);
    m2m_init(pad);
    sendq = calloc(nconns, sizeof *sendq);
  }

  /* 1. connect */
  t_connect0 = now_ns();
  logf_("{\"event\":\"connecting\",\"conns\":%d}", nconns);
  loop_until(t_connect0 + (uint64_t)(o.connect_timeout * 1e9), all_connected, connect_tick);
  t_all_ready = now_ns();
  double connect_s = (t_all_ready - t_connect0) / 1e9;
  started = 1;
  /* presence frames and stragglers are abandoned: whatever is still connecting now is dead */
  for (int i = 0; i < nconns; i++)
    if (cs[i].state != ST_READY && cs[i].state != ST_DEAD && cs[i].state != ST_FREE) kill_conn(&cs[i], 2);
  logf_("{\"event\":\"connected\",\"ready\":%d,\"seconds\":%.3f}", ready_count, connect_s);

  if (o.mode == M_IDLE) {
    logf_("{\"event\":\"holding\",\"ready\":%d}", ready_count);
    uint64_t t0 = now_ns();
    double cpu0 = cpu_self_s(), srv0 = cpu_pids_s();
    loop_until(t0 + (uint64_t)(o.hold * 1e9), NULL, NULL);
    print_result(connect_s, 0, (now_ns() - t0) / 1e9, cpu_self_s() - cpu0, srv0 >= 0 ? cpu_pids_s() - srv0 : -1, "idle");
    return 0;
  }
  double settle_s = 0;
  if (o.mode == M_FANOUT || o.mode == M_M2M) {
    settle_since = now_ns();
    last_rx = settle_since;
    loop_until(settle_since + (uint64_t)(o.settle_max * 1e9), quiet, NULL);
    settle_s = (now_ns() - settle_since) / 1e9;
    logf_("{\"event\":\"settled\",\"seconds\":%.3f}", settle_s);
  }
  double meas_s, ccpu, scpu;
  if (o.mode == M_M2M) {
    for (int k = 0; k < o.nrates; k++) {
      o.rate = o.rates[k];
      if (k) {
        memset(hist, 0, sizeof hist);
        hcount = hmax = 0;
        msgs_meas = bytes_meas = m2m_sent = m2m_sent_meas = m2m_deliveries = m2m_self = m2m_foreign = 0;
        reads_meas = writes_meas = 0;
        for (int i = 0; i < nconns; i++) cs[i].count_meas = 0;
        logf_("{\"event\":\"phase\",\"rate\":%.1f}", o.rate);
      }
      run_phase(&meas_s, &ccpu, &scpu);
      char phase[32];
      if (o.rate > 0) snprintf(phase, sizeof phase, "%ghz", o.rate);
      else snprintf(phase, sizeof phase, "saturation");
      print_result(connect_s, settle_s, meas_s, ccpu, scpu, phase);
    }
    return 0;
  }
  run_phase(&meas_s, &ccpu, &scpu);
  print_result(connect_s, settle_s, meas_s, ccpu, scpu, o.mode == M_ECHO ? "echo" : o.rate > 0 ? "paced" : "burst");
  if (o.mode == M_FANOUT && o.rate == 0 && o.then_paced > 0 && pub_sent_meas > 0) {
    /* the same room, now paced at a fraction of the capacity just measured */
    o.rate = o.then_paced * pub_sent_meas / meas_s;
    logf_("{\"event\":\"pacing\",\"rate\":%.1f}", o.rate);
    memset(hist, 0, sizeof hist);
    hcount = hmax = 0;
    msgs_meas = bytes_meas = pub_sent = pub_sent_meas = pub_outstanding = deliveries_total = pub_seen = 0;
    for (int i = 0; i < nconns; i++) cs[i].count_meas = 0;
    run_phase(&meas_s, &ccpu, &scpu);
    print_result(connect_s, settle_s, meas_s, ccpu, scpu, "paced");
  }
  return 0;
}
