/* The motor board: dispatch, watchdog, e-stop latch, telemetry and the leg-velocity PID. */
#include "board.h"

#include "hal.h"

/* 2 pi in Q16 (2 pi x 65536, rounded): radians per encoder count x 2^32. */
#define TWO_PI_Q16 411775
/* TWO_PI_Q16 / 1000 in Q10: the same per milli-unit (ms, milli-counts), x 2^32. */
#define TWO_PI_Q16_PER_1000_Q10 421658
/* 2^32 / 1000 in Q10: duty x 2^32 per (duty per rev/s x milli-rev/s). */
#define Q32_PER_1000_Q10 4398046511LL
#define ERROR_LIMIT_COUNTS (1L << 22) /* 64 revolutions: far past full duty */
#define VELOCITY_ERROR_LIMIT (1LL << 36) /* milli-counts/s: 1000 rev/s; keeps Kd x it in 64 bits */

/* x * k >> 10, rounded to nearest, without shifting a negative number. */
static int64_t mul_q10(int64_t x, int64_t k) {
    int64_t p = x * k;
    return p >= 0 ? (p + 512) / 1024 : -((-p + 512) / 1024);
}

/* x / 2^32 rounded to nearest, saturated to +-BOARD_DUTY_MAX. */
static int16_t duty_from_q32(int64_t x) {
    const int64_t half = 1LL << 31, one = 1LL << 32;
    int64_t d = x >= 0 ? (x + half) / one : -((-x + half) / one);
    if (d > BOARD_DUTY_MAX) d = BOARD_DUTY_MAX;
    if (d < -BOARD_DUTY_MAX) d = -BOARD_DUTY_MAX;
    return (int16_t)d;
}

static int32_t clamp32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* --- output --------------------------------------------------------------------------- */
static void send(board_t *b, uint8_t type, const uint8_t *payload, uint8_t n) {
    uint8_t wire[PROTO_MAX_WIRE];
    size_t len = frame_encode(type, b->tx_seq, payload, n, wire);
    hal_uart_write(wire, len);
    b->tx_seq++;
    b->tx_frames++;
}

static void ack(board_t *b, const frame_t *f) {
    uint8_t p[3];
    put_u16(p, f->seq);
    p[2] = f->type;
    send(b, MSG_ACK, p, sizeof p);
}

static void nack(board_t *b, const frame_t *f, uint8_t error) {
    uint8_t p[4];
    put_u16(p, f->seq);
    p[2] = f->type;
    p[3] = error;
    b->nacks_sent++;
    send(b, MSG_NACK, p, sizeof p);
}

uint8_t board_flags(const board_t *b) {
    return (uint8_t)((b->motors_on ? FLAG_MOTORS_ON : 0) |
                     (b->watchdog_tripped ? FLAG_WATCHDOG_TRIPPED : 0) |
                     (b->estopped ? FLAG_ESTOPPED : 0) | (b->open_loop ? FLAG_OPEN_LOOP : 0) |
                     (b->telemetry_rate_hz ? FLAG_TELEMETRY_ON : 0));
}

static void schedule_next_sample(board_t *b) {
    /* Sample n is due at start + round(n x 1000 / rate) ms (halves up), counted from the
     * start of the current second so that nothing overflows however long it streams. */
    uint32_t rate = b->telemetry_rate_hz;
    if (++b->tel_phase >= rate) {
        b->tel_phase = 0;
        b->tel_epoch_us += 1000000u;
    }
    uint32_t ms = (2000u * (uint32_t)b->tel_phase + rate) / (2u * rate); /* 32-bit on a dsPIC too */
    b->tel_next_us = b->tel_epoch_us + ms * BOARD_TICK_US;
}

static void send_sample_now(board_t *b) {
    uint8_t p[47];
    int16_t gyro[3], accel[3];
    p[0] = board_flags(b);
    put_u32(p + 1, b->sample_index);
    put_u32(p + 5, b->now_us);
    for (uint8_t i = 0; i < 2; i++) {
        const pid_side_t *s = &b->side[i];
        put_u32(p + 9 + 4 * i, (uint32_t)s->pos);
        put_u32(p + 17 + 4 * i, (uint32_t)(b->pid_active ? s->ref : s->pos));
        put_u16(p + 25 + 2 * i, (uint16_t)s->duty);
    }
    hal_imu_sample(gyro, accel);
    for (uint8_t i = 0; i < 3; i++) {
        put_u16(p + 29 + 2 * i, (uint16_t)gyro[i]);
        put_u16(p + 35 + 2 * i, (uint16_t)accel[i]);
    }
    put_u16(p + 41, (uint16_t)hal_adc_bemf_mv(HAL_LEFT));
    put_u16(p + 43, (uint16_t)hal_adc_bemf_mv(HAL_RIGHT));
    put_u16(p + 45, (uint16_t)hal_adc_battery_mv());
    send(b, MSG_TELEMETRY, p, sizeof p);
    uint8_t pose[28];
    if (hal_tracker_pose(pose)) {
        put_u32(pose + 24, b->now_us);
        send(b, MSG_POSE, pose, sizeof pose);
    }
    b->sample_index++;
    schedule_next_sample(b);
}

void board_send_sample(board_t *b) {
    if (b->telemetry_rate_hz) send_sample_now(b);
}

/* --- drive ---------------------------------------------------------------------------- */
static void set_gains(pid_side_t *s, const uint8_t *p) {
    s->kp = get_i16(p);
    s->ki = get_i16(p + 2);
    s->kd = get_i16(p + 4);
    s->kaw = get_i16(p + 6);
    s->kff = get_i16(p + 8);
    int64_t kaw = s->kaw > 0 ? s->kaw : BOARD_DEFAULT_KAW;
    /* |Ki x integral| x TWO_PI_Q16 / 1000 / 2^32 <= Kaw duty. */
    s->integral_max = s->ki > 0 ? (kaw << 32) * 1000 / ((int64_t)TWO_PI_Q16 * s->ki) : 0;
    if (s->integral > s->integral_max) s->integral = s->integral_max;
    if (s->integral < -s->integral_max) s->integral = -s->integral_max;
}

/* Enters closed loop: the reference starts at the leg, the integral at zero. */
static void enter_pid(board_t *b) {
    if (b->pid_active) return;
    b->pid_active = 1;
    for (uint8_t i = 0; i < 2; i++) {
        b->side[i].ref = b->side[i].pos;
        b->side[i].ref_rem = 0;
        b->side[i].integral = 0;
    }
}

static void motors_off(board_t *b) {
    b->motors_on = 0;
    b->pid_active = 0;
}

static int16_t pid_step(pid_side_t *s, int32_t pos_window_ago) {
    /* The reference advances by the setpoint: mrev/s x 65536 counts / 1e6 per ms. */
    s->ref_rem += (int32_t)s->setpoint_mrev * 65536;
    s->ref = (int32_t)((uint32_t)s->ref + (uint32_t)(s->ref_rem / 1000000)); /* wraps */
    s->ref_rem %= 1000000;
    int32_t e = clamp32((int32_t)((uint32_t)s->ref - (uint32_t)s->pos), -ERROR_LIMIT_COUNTS,
                        ERROR_LIMIT_COUNTS);
    if (s->ki > 0) {
        s->integral += e;
        if (s->integral > s->integral_max) s->integral = s->integral_max;
        if (s->integral < -s->integral_max) s->integral = -s->integral_max;
    } else {
        s->integral = 0;
    }
    /* Velocity error in milli-counts/s: setpoint minus the encoder difference over the
     * window (exactly 2 physics steps of the simulator; 2.5 ms of lag on hardware). */
    int64_t dpos = (int32_t)((uint32_t)s->pos - (uint32_t)pos_window_ago);
    int64_t verr = (int64_t)s->setpoint_mrev * 65536 -
                   dpos * (int64_t)(1000000 / BOARD_VELOCITY_WINDOW);
    if (verr > VELOCITY_ERROR_LIMIT) verr = VELOCITY_ERROR_LIMIT;
    if (verr < -VELOCITY_ERROR_LIMIT) verr = -VELOCITY_ERROR_LIMIT;
    int64_t q32 = (int64_t)s->kp * e * TWO_PI_Q16;                          /* Kp x rad */
    q32 += mul_q10(s->integral, TWO_PI_Q16_PER_1000_Q10) * s->ki;            /* Ki x rad s */
    q32 += mul_q10(verr, TWO_PI_Q16_PER_1000_Q10) * s->kd;                   /* Kd x rad/s */
    q32 += mul_q10((int64_t)s->kff * s->setpoint_mrev, Q32_PER_1000_Q10);    /* Kff x rev/s */
    return duty_from_q32(q32);
}

void board_tick(board_t *b) {
    b->now_us = b->next_tick_us;
    b->next_tick_us += BOARD_TICK_US;
    if (b->motors_on &&
        (uint32_t)(b->now_us - b->last_command_us) >= (uint32_t)b->timeout_ms * 1000u) {
        motors_off(b);
        b->watchdog_tripped = 1;
        b->watchdog_trip_us = b->now_us;
        b->watchdog_trips++;
    }
    b->tick_index = (uint8_t)((b->tick_index + 1u) % BOARD_VELOCITY_WINDOW);
    for (uint8_t i = 0; i < 2; i++) {
        pid_side_t *s = &b->side[i];
        s->pos = (int32_t)((uint32_t)hal_encoder_count(i) - (uint32_t)s->zero_raw);
        int32_t old = s->hist[b->tick_index];
        s->hist[b->tick_index] = s->pos;
        if (!b->motors_on)
            s->duty = 0;
        else if (b->pid_active)
            s->duty = pid_step(s, old);
        else
            s->duty = s->duty_cmd;
        hal_pwm_set(i, s->duty);
    }
    if (b->telemetry_rate_hz && !b->stream_paused && (int32_t)(b->now_us - b->tel_next_us) >= 0)
        send_sample_now(b);
}

/* --- commands ------------------------------------------------------------------------- */
static uint8_t payload_len(uint8_t type) {
    switch (type) {
    case MSG_SET_LEG_VELOCITY:
    case MSG_SET_DUTY: return 4;
    case MSG_SET_PID_GAINS: return 20;
    case MSG_SET_COMMAND_TIMEOUT:
    case MSG_START_TELEMETRY: return 2;
    default: return 0;
    }
}

static int is_command(uint8_t type) {
    return type == MSG_HELLO || type == MSG_GET_STATUS ||
           (type >= MSG_SET_LEG_VELOCITY && type <= MSG_CLEAR_EMERGENCY_STOP);
}

static void reply_hello(board_t *b, const frame_t *f) {
    uint8_t p[26];
    put_u16(p, f->seq);
    p[2] = PROTO_VERSION;
    p[3] = b->id.fw_major;
    p[4] = b->id.fw_minor;
    p[5] = b->id.fw_patch;
    put_u32(p + 6, b->id.device_id);
    for (uint8_t i = 0; i < 16; i++) p[10 + i] = (uint8_t)b->id.name[i];
    send(b, MSG_HELLO_REPLY, p, sizeof p);
}

static void reply_status(board_t *b, const frame_t *f) {
    uint8_t p[37];
    put_u16(p, f->seq);
    p[2] = board_flags(b);
    put_u32(p + 3, b->now_us);
    put_u32(p + 7, b->last_command_us);
    put_u32(p + 11, b->watchdog_trip_us);
    put_u16(p + 15, b->timeout_ms);
    put_u16(p + 17, b->telemetry_rate_hz);
    put_u32(p + 19, b->decoder.c.frames_ok);
    put_u32(p + 23, decoder_errors(&b->decoder));
    put_u32(p + 27, b->decoder.c.frames_missed);
    put_u32(p + 31, b->tx_frames);
    put_u16(p + 35, b->watchdog_trips);
    send(b, MSG_STATUS, p, sizeof p);
}

static int motion_refused(board_t *b, const frame_t *f) {
    if (b->estopped) nack(b, f, ERR_ESTOPPED);
    return b->estopped;
}

/* Executes one accepted frame. NACK precedence: unknown type, malformed, e-stop, range. */
static void execute(board_t *b, const frame_t *f) {
    const uint8_t *p = f->payload;
    if (!is_command(f->type)) {
        nack(b, f, ERR_UNKNOWN_TYPE);
        return;
    }
    if (f->len != payload_len(f->type)) {
        nack(b, f, ERR_MALFORMED);
        return;
    }
    switch (f->type) {
    case MSG_HELLO: reply_hello(b, f); return;
    case MSG_GET_STATUS: reply_status(b, f); return;
    case MSG_SET_LEG_VELOCITY: {
        int16_t l = get_i16(p), r = get_i16(p + 2);
        b->leg_velocity_frames++;
        if (motion_refused(b, f)) return;
        if (l < 0 || r < 0 || l > BOARD_SANITY_HIGH_MREV || r > BOARD_SANITY_HIGH_MREV) {
            nack(b, f, ERR_OUT_OF_RANGE);
            return;
        }
        b->side[0].setpoint_mrev = (int16_t)clamp32(l, BOARD_SETPOINT_LOW_MREV, BOARD_SETPOINT_HIGH_MREV);
        b->side[1].setpoint_mrev = (int16_t)clamp32(r, BOARD_SETPOINT_LOW_MREV, BOARD_SETPOINT_HIGH_MREV);
        b->open_loop = 0;
        b->last_command_us = b->now_us;
        if (b->motors_on) enter_pid(b);
        break;
    }
    case MSG_SET_DUTY: {
        int16_t l = get_i16(p), r = get_i16(p + 2);
        if (motion_refused(b, f)) return;
        if (l < -BOARD_DUTY_MAX || l > BOARD_DUTY_MAX || r < -BOARD_DUTY_MAX || r > BOARD_DUTY_MAX) {
            nack(b, f, ERR_OUT_OF_RANGE);
            return;
        }
        b->side[0].duty_cmd = l;
        b->side[1].duty_cmd = r;
        b->open_loop = 1;
        b->pid_active = 0;
        b->last_command_us = b->now_us;
        break;
    }
    case MSG_START_MOTORS:
        if (motion_refused(b, f)) return;
        b->motors_on = 1;
        b->watchdog_tripped = 0;
        b->last_command_us = b->now_us;
        if (!b->open_loop) enter_pid(b);
        break;
    case MSG_STOP_MOTORS: motors_off(b); break;
    case MSG_EMERGENCY_STOP:
        b->estopped = 1;
        motors_off(b);
        break;
    case MSG_CLEAR_EMERGENCY_STOP: b->estopped = 0; break;
    case MSG_SET_PID_GAINS:
        set_gains(&b->side[0], p);
        set_gains(&b->side[1], p + 10);
        break;
    case MSG_ZERO_ENCODERS:
        /* Positions read 0 from here on; references and the velocity window move with them,
         * so the position error, and the drive, do not change. */
        for (uint8_t i = 0; i < 2; i++) {
            pid_side_t *s = &b->side[i];
            int32_t shift = s->pos;
            s->zero_raw = (int32_t)((uint32_t)s->zero_raw + (uint32_t)shift);
            s->pos = 0;
            s->ref = (int32_t)((uint32_t)s->ref - (uint32_t)shift);
            for (uint8_t k = 0; k < BOARD_VELOCITY_WINDOW; k++)
                s->hist[k] = (int32_t)((uint32_t)s->hist[k] - (uint32_t)shift);
        }
        break;
    case MSG_SET_COMMAND_TIMEOUT: {
        uint16_t ms = get_u16(p);
        if (ms < 10 || ms > 10000) {
            nack(b, f, ERR_OUT_OF_RANGE);
            return;
        }
        b->timeout_ms = ms;
        break;
    }
    case MSG_START_TELEMETRY: {
        uint16_t hz = get_u16(p);
        if (hz < 1 || hz > 1000) {
            nack(b, f, ERR_OUT_OF_RANGE);
            return;
        }
        b->telemetry_rate_hz = hz;
        b->sample_index = 0;
        b->tel_phase = 0;
        b->tel_epoch_us = b->now_us;
        b->tel_next_us = b->now_us;
        ack(b, f);
        if (!b->stream_paused) send_sample_now(b); /* sample 0 now, sample n at +round(n/rate) */
        return;
    }
    case MSG_STOP_TELEMETRY: b->telemetry_rate_hz = 0; break;
    default: break;
    }
    ack(b, f);
}

void board_rx(board_t *b, const uint8_t *data, uint32_t n) {
    frame_t f;
    for (uint32_t i = 0; i < n; i++)
        if (decoder_push(&b->decoder, data[i], &f)) execute(b, &f);
}

/* --- set-up and main loop ------------------------------------------------------------- */
void board_init(board_t *b, const board_identity_t *id) {
    static const uint8_t defaults[10] = {
        BOARD_DEFAULT_KP & 0xFF, BOARD_DEFAULT_KP >> 8, BOARD_DEFAULT_KI & 0xFF,
        BOARD_DEFAULT_KI >> 8,   BOARD_DEFAULT_KD & 0xFF, BOARD_DEFAULT_KD >> 8,
        BOARD_DEFAULT_KAW & 0xFF, BOARD_DEFAULT_KAW >> 8, BOARD_DEFAULT_KFF & 0xFF,
        BOARD_DEFAULT_KFF >> 8};
    static const uint8_t zero = 0;
    uint8_t *raw = (uint8_t *)b;
    for (uint32_t i = 0; i < sizeof *b; i++) raw[i] = 0;
    b->id = *id;
    decoder_init(&b->decoder, is_command);
    b->timeout_ms = BOARD_DEFAULT_TIMEOUT_MS;
    b->now_us = hal_micros();
    b->next_tick_us = b->now_us + BOARD_TICK_US;
    for (uint8_t i = 0; i < 2; i++) {
        pid_side_t *s = &b->side[i];
        set_gains(s, defaults);
        s->setpoint_mrev = BOARD_SETPOINT_LOW_MREV;
        s->pos = hal_encoder_count(i); /* the encoder's own zero until ZERO_ENCODERS */
        for (uint8_t k = 0; k < BOARD_VELOCITY_WINDOW; k++) s->hist[k] = s->pos;
        hal_pwm_set(i, 0);
    }
    hal_uart_write(&zero, 1); /* ends any partial frame in the host's decoder */
}

void board_poll(board_t *b) {
    uint32_t now = hal_micros();
    uint32_t n = 0;
    while ((int32_t)(now - b->next_tick_us) >= 0) {
        if (n++ == BOARD_MAX_CATCHUP) { /* far behind: skip the lost ticks, keep time */
            b->next_tick_us = now;
        }
        board_tick(b);
    }
    for (n = 0; n < BOARD_RX_BUDGET; n++) {
        int c = hal_uart_read();
        if (c < 0) break;
        uint8_t byte = (uint8_t)c;
        board_rx(b, &byte, 1);
    }
}
