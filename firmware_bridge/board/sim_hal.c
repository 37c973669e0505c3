/* The HAL of the simulated board: the host shared library that runs this firmware inside
 * the fake robot (firmware_bridge/fake/c_firmware.py) and under the tests.
 *
 * The simulation writes the clock and the encoder counts into `sim_io` before each tick and
 * reads the duty and the sent bytes after it; the IMU, ADC and tracker readings come from
 * the `sample` callback, called at most once per tick, when a telemetry sample needs them.
 */
#include <stdint.h>

#include "sim_hal.h"

#include "hal.h"

sim_io_t sim_io;
board_t sim_board;

uint32_t sim_board_size(void) { return (uint32_t)sizeof(board_t); }
uint32_t sim_io_size(void) { return (uint32_t)sizeof(sim_io_t); }

uint32_t hal_micros(void) { return sim_io.micros; }
void hal_pwm_set(uint8_t side, int16_t duty) { sim_io.duty[side & 1u] = duty; }
int32_t hal_encoder_count(uint8_t side) { return sim_io.encoder[side & 1u]; }

static void sample(void) {
    if (sim_io.sampled_at == sim_io.micros + 1u) return;
    sim_io.sampled_at = sim_io.micros + 1u;
    if (sim_io.sample) sim_io.sample();
}

void hal_imu_sample(int16_t gyro[3], int16_t accel[3]) {
    sample();
    for (int i = 0; i < 3; i++) {
        gyro[i] = sim_io.gyro[i];
        accel[i] = sim_io.accel[i];
    }
}
int16_t hal_adc_bemf_mv(uint8_t side) {
    sample();
    return sim_io.bemf_mv[side & 1u];
}
int16_t hal_adc_battery_mv(void) {
    sample();
    return sim_io.battery_mv;
}
int hal_tracker_pose(uint8_t out[24]) {
    sample();
    if (!sim_io.has_pose) return 0;
    for (int i = 0; i < 24; i++) out[i] = sim_io.pose[i];
    return 1;
}

int hal_uart_read(void) { return -1; } /* the simulation feeds bytes with board_rx */
void hal_uart_write(const uint8_t *data, size_t n) {
    if (sim_io.tx_len + n > SIM_TX_CAPACITY) {
        sim_io.tx_dropped += (uint32_t)n;
        return;
    }
    for (size_t i = 0; i < n; i++) sim_io.tx[sim_io.tx_len++] = data[i];
}

/* --- the simulation's entry points (ctypes) -------------------------------------------- */
void sim_init(uint32_t micros, int32_t enc_left, int32_t enc_right, const char *name,
              uint32_t device_id) {
    board_identity_t id = {0};
    id.device_id = device_id;
    id.fw_major = 1;
    for (int i = 0; i < 16 && name[i]; i++) id.name[i] = name[i];
    sim_io.micros = micros;
    sim_io.encoder[0] = enc_left;
    sim_io.encoder[1] = enc_right;
    sim_io.sampled_at = 0;
    sim_io.tx_len = sim_io.tx_dropped = 0;
    board_init(&sim_board, &id);
}

/* Time is now `micros` (one tick after the last) and the encoders read these counts:
 * runs one tick; returns the watchdog trips since reset. */
uint32_t sim_tick(uint32_t micros, int32_t enc_left, int32_t enc_right) {
    sim_io.micros = micros;
    sim_io.encoder[0] = enc_left;
    sim_io.encoder[1] = enc_right;
    board_tick(&sim_board);
    return sim_board.watchdog_trips;
}

void sim_rx(const uint8_t *data, uint32_t n) { board_rx(&sim_board, data, n); }
void sim_send_sample(void) { board_send_sample(&sim_board); }
void sim_set_paused(int paused) { sim_board.stream_paused = (uint8_t)(paused != 0); }

/* Board counters for the fake's stats line and the tests, in this order. */
void sim_stats(uint32_t out[21]) {
    const decoder_counters_t *c = &sim_board.decoder.c;
    const board_t *b = &sim_board;
    uint32_t v[21] = {c->bytes_in, c->frames_ok, c->bad_crc, c->cobs_errors, c->runts,
                      c->oversize, c->bad_version, c->unknown_type, c->seq_gaps,
                      c->frames_missed, c->seq_backwards, b->tx_frames, b->nacks_sent, b->watchdog_trips,
                      b->last_command_us, b->watchdog_trip_us, b->now_us,
                      board_flags(b), b->leg_velocity_frames, b->sample_index,
                      sim_io.tx_dropped};
    for (int i = 0; i < 21; i++) out[i] = v[i];
}

/* A frame decoder of its own, for the codec cross-check: feeds `n` bytes, writes each
 * accepted frame to `out` as type, seq (2 bytes, LE), length, payload; returns the bytes
 * written (at most `cap`: frames that do not fit are left out). */
static decoder_t sim_decoder;
static int reply_type(uint8_t type) { return type >= MSG_ACK && type <= MSG_POSE; }
static int command_type(uint8_t type) {
    return type == MSG_HELLO || type == MSG_GET_STATUS ||
           (type >= MSG_SET_LEG_VELOCITY && type <= MSG_CLEAR_EMERGENCY_STOP);
}
/* known: 0 every type, 1 the reply types (a host's decoder), 2 the command types. */
void sim_decoder_reset(int known) {
    decoder_init(&sim_decoder, known == 1 ? reply_type : known == 2 ? command_type : 0);
}
uint32_t sim_decoder_feed(const uint8_t *data, uint32_t n, uint8_t *out, uint32_t cap) {
    uint32_t w = 0;
    frame_t f;
    for (uint32_t i = 0; i < n; i++) {
        if (!decoder_push(&sim_decoder, data[i], &f)) continue;
        if (w + 4u + f.len > cap) continue;
        out[w++] = f.type;
        out[w++] = (uint8_t)f.seq;
        out[w++] = (uint8_t)(f.seq >> 8);
        out[w++] = f.len;
        for (uint32_t k = 0; k < f.len; k++) out[w++] = f.payload[k];
    }
    return w;
}
void sim_decoder_counters(uint32_t out[11]) {
    const decoder_counters_t *c = &sim_decoder.c;
    uint32_t v[11] = {c->bytes_in, c->frames_ok,    c->bad_crc,      c->cobs_errors,
                      c->runts,    c->oversize,     c->bad_version,  c->unknown_type,
                      c->seq_gaps, c->frames_missed, c->seq_backwards};
    for (int i = 0; i < 11; i++) out[i] = v[i];
}
