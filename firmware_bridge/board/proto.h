/* Protocol v1 below the messages: COBS, CRC-16/CCITT-FALSE, little-endian field access,
 * frame encoding and the push-style frame decoder with its counters (docs/protocol.md,
 * "Frame" and "Receiver rules"). No allocation, no I/O, no floating point.
 */
#ifndef ROACH_PROTO_H
#define ROACH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1u
#define PROTO_HEADER_LEN 4u
#define PROTO_CRC_LEN 2u
#define PROTO_MAX_PAYLOAD 240u
#define PROTO_MAX_RAW (PROTO_HEADER_LEN + PROTO_MAX_PAYLOAD + PROTO_CRC_LEN) /* 246 */
#define PROTO_MAX_ENCODED (PROTO_MAX_RAW + 1u) /* 247: one code byte per 254, plus one */
#define PROTO_MAX_WIRE (PROTO_MAX_ENCODED + 1u) /* with the 0x00 delimiter */

/* Little-endian access at any offset, byte by byte: never through a cast pointer, so a
 * u32 at an odd offset cannot fault on a Cortex-M0+ or a dsPIC. */
static inline uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8)); /* no int overflow at 16 bits */
}
static inline uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline int16_t get_i16(const uint8_t *p) { return (int16_t)get_u16(p); }
static inline void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint16_t crc16_ccitt_false(const uint8_t *data, size_t n);

/* COBS-encodes `n` bytes into `out` (room for n + n/254 + 1 bytes); returns the length. */
size_t cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
/* Decodes `n` COBS bytes (no 0x00 among them) into `out` (room for n bytes); returns the
 * decoded length, or -1 if a code byte points past the end. */
int cobs_decode(const uint8_t *in, size_t n, uint8_t *out);

/* Wire bytes of one frame (COBS + 0x00) into `out` (PROTO_MAX_WIRE bytes); returns the
 * length, or 0 if the payload is longer than PROTO_MAX_PAYLOAD. */
size_t frame_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n,
                    uint8_t *out);

typedef struct {
    uint32_t bytes_in, frames_ok, bad_crc, cobs_errors, runts, oversize, bad_version,
        unknown_type, seq_gaps, frames_missed, seq_backwards;
} decoder_counters_t;

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint8_t len;
    const uint8_t *payload; /* into the decoder's buffer: valid until the next push */
} frame_t;

/* Returns 1 if `type` is known to this side (the board: the command types). */
typedef int (*known_type_fn)(uint8_t type);

typedef struct {
    uint8_t run[PROTO_MAX_ENCODED]; /* bytes since the last 0x00 */
    uint8_t raw[PROTO_MAX_ENCODED];
    uint16_t n;
    uint8_t discarding; /* inside an oversize run: drop until the next 0x00 */
    uint8_t have_last_seq;
    uint16_t last_seq;
    known_type_fn known;
    decoder_counters_t c;
} decoder_t;

void decoder_init(decoder_t *d, known_type_fn known);
/* Forgets the peer's last sequence number. */
void decoder_reset_sequence(decoder_t *d);
/* Pushes one byte; returns 1 and fills `f` when it completes an accepted frame. */
int decoder_push(decoder_t *d, uint8_t byte, frame_t *f);
/* Dropped runs: bad CRC + COBS errors + runts + oversize + bad version. */
uint32_t decoder_errors(const decoder_t *d);

#endif
