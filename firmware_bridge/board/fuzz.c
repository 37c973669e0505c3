/* Fuzzing the board with random and mutated byte streams (built with the sanitizers).
 *
 *     fuzz SECONDS [SEED]
 *
 * Feeds the board, through sim_hal.c, streams made of valid command frames, frames with
 * flipped, inserted, deleted and zeroed bytes, truncated frames, and random bytes, between
 * ticks with random encoder counts and clock jumps; decodes everything the board sends
 * with a second decoder. Aborts (exit != 0) when an invariant fails: a sent frame that does
 * not decode, a duty outside +-4000, motors on while e-stopped, decoder counters that do
 * not add up. Prints the number of iterations and bytes on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "proto.h"
#include "sim_hal.h"


static uint64_t rng_state;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

static const uint8_t types[] = {0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
                                0x16, 0x17, 0x18, 0x19, 0x1A, 0x00, 0x7F, 0x80, 0xFF};
static const uint8_t lengths[] = {0, 0, 4, 4, 0, 0, 20, 0, 2, 2, 0, 0, 0, 0, 0, 3, 240};

static decoder_t host;
static int reply(uint8_t t) { return t >= 0x80 && t <= 0x85; }

static void drain(void) {
    frame_t f;
    for (uint32_t i = 0; i < sim_io.tx_len; i++) {
        if (decoder_push(&host, sim_io.tx[i], &f)) {
            CHECK(reply(f.type));
            CHECK(f.type != 0x84 || f.len == 47);
            CHECK(f.type != 0x83 || f.len == 37);
        }
    }
    sim_io.tx_len = 0;
    CHECK(decoder_errors(&host) == 0);
    CHECK(host.c.unknown_type == 0);
}

static size_t make_frame(uint8_t *out, uint16_t seq) {
    uint8_t payload[PROTO_MAX_PAYLOAD];
    uint32_t k = below(sizeof types);
    size_t n = below(8) ? lengths[k] : below(PROTO_MAX_PAYLOAD + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd();
        /* Mostly small values, so that in-range commands are common. */
        payload[i] = (uint8_t)((r & 3) == 0 ? r >> 24 : (i & 1) ? (r >> 8) % 40 : r >> 16);
    }
    return frame_encode(types[k], seq, payload, n, out);
}

static void mutate(uint8_t *buf, size_t *n) {
    switch (below(6)) {
    case 0: buf[below((uint32_t)*n)] ^= (uint8_t)(1u << below(8)); break;
    case 1: buf[below((uint32_t)*n)] = (uint8_t)rnd(); break;
    case 2: buf[below((uint32_t)*n)] = 0; break;
    case 3: if (*n > 1) (*n)--; break;
    case 4: *n = below((uint32_t)*n) + 1; break;
    default:
        if (*n < 400) {
            size_t at = below((uint32_t)*n);
            for (size_t i = *n; i > at; i--) buf[i] = buf[i - 1];
            buf[at] = (uint8_t)rnd();
            (*n)++;
        }
    }
}

static void sample(void) {
    for (int i = 0; i < 3; i++) {
        sim_io.gyro[i] = (int16_t)rnd();
        sim_io.accel[i] = (int16_t)rnd();
    }
    sim_io.bemf_mv[0] = (int16_t)rnd();
    sim_io.bemf_mv[1] = (int16_t)rnd();
    sim_io.battery_mv = (int16_t)rnd();
    sim_io.has_pose = (int32_t)(rnd() & 1);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    rng_state = argc > 2 ? strtoull(argv[2], 0, 10) * 2654435761ULL + 1 : (uint64_t)time(0);
    clock_t end = clock() + (clock_t)(seconds * CLOCKS_PER_SEC);
    uint64_t iterations = 0, bytes = 0;
    uint8_t buf[1024];
    while (clock() < end) {
        uint32_t micros = rnd();
        int32_t enc[2] = {(int32_t)rnd(), (int32_t)rnd()};
        sim_init(micros, enc[0], enc[1], "fuzz", 1);
        sim_io.sample = sample;
        decoder_init(&host, reply);
        drain();
        uint16_t seq = (uint16_t)rnd();
        for (int step = 0; step < 200; step++) {
            size_t n = 0;
            switch (below(4)) {
            case 0: /* random bytes */
                n = below(300);
                for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(below(4) ? rnd() : 0);
                break;
            case 1: /* a mutated frame */
                n = make_frame(buf, seq++);
                mutate(buf, &n);
                break;
            default: /* valid frames */
                n = make_frame(buf, seq++);
                n += make_frame(buf + n, seq++);
            }
            /* Fed in random chunks. */
            for (size_t i = 0; i < n;) {
                size_t k = 1 + below((uint32_t)(n - i));
                sim_rx(buf + i, (uint32_t)k);
                i += k;
                drain();
            }
            bytes += n;
            uint32_t ticks = below(4) ? below(5) : below(400);
            for (uint32_t t = 0; t < ticks; t++) {
                micros += 1000;
                for (int s = 0; s < 2; s++)
                    enc[s] = below(50) ? (int32_t)((uint32_t)enc[s] + below(2000)) : (int32_t)rnd();
                sim_tick(micros, enc[0], enc[1]);
                CHECK(sim_io.duty[0] >= -4000 && sim_io.duty[0] <= 4000);
                CHECK(sim_io.duty[1] >= -4000 && sim_io.duty[1] <= 4000);
                CHECK(!(sim_board.estopped && sim_board.motors_on));
                CHECK(sim_board.motors_on || (sim_io.duty[0] == 0 && sim_io.duty[1] == 0));
                drain();
            }
            if (below(8) == 0) {
                sim_send_sample();
                drain();
            }
            const decoder_counters_t *c = &sim_board.decoder.c;
            CHECK(c->bytes_in >= c->frames_ok);
            CHECK(c->seq_gaps <= c->frames_ok);
        }
        iterations++;
    }
    printf("fuzz: %llu boards, %llu bytes, no invariant failed\n",
           (unsigned long long)iterations, (unsigned long long)bytes);
    return 0;
}
