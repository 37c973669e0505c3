/* The motor board of protocol v1: command dispatch and replies, the command watchdog,
 * the emergency-stop latch, setpoint clamping, the telemetry scheduler and the 1 kHz
 * leg-velocity PID (docs/protocol.md, "Messages" and "Board behaviour").
 *
 * Single-threaded and cooperative: the port's main loop calls board_poll() as often as it
 * can; board_poll() runs board_tick() once per elapsed millisecond of hal_micros() and
 * then executes the commands whose bytes hal_uart_read() has. Integer arithmetic only; the
 * whole state is one board_t, which the port allocates statically.
 */
#ifndef ROACH_BOARD_H
#define ROACH_BOARD_H

#include <stdint.h>

#include "proto.h"

#define BOARD_TICK_US 1000u
#define BOARD_DEFAULT_TIMEOUT_MS 250u
#define BOARD_DUTY_MAX 4000
#define BOARD_SETPOINT_LOW_MREV 2000  /* clamp: the operating range 2.0 .. 9.0 rev/s */
#define BOARD_SETPOINT_HIGH_MREV 9000
#define BOARD_SANITY_HIGH_MREV 20000  /* NACK out of range: below 0 or above 20 rev/s */
#define BOARD_DEFAULT_KP 1800         /* duty per rad of position error */
#define BOARD_DEFAULT_KI 200          /* duty per rad s of integrated error */
#define BOARD_DEFAULT_KD 100          /* duty per rad/s of velocity error */
#define BOARD_DEFAULT_KAW 2000        /* the Ki term is held within +-Kaw duty */
#define BOARD_DEFAULT_KFF 0           /* duty per rev/s of setpoint, fed forward */
#define BOARD_VELOCITY_WINDOW 5u      /* ms: leg velocity = encoder difference over 5 ticks */
#define BOARD_MAX_CATCHUP 10u         /* ticks board_poll runs late before it skips ahead */
#define BOARD_RX_BUDGET 64u           /* bytes board_poll takes from the UART per call */

/* Message types (docs/protocol.md). */
enum {
    MSG_HELLO = 0x01, MSG_GET_STATUS = 0x02, MSG_SET_LEG_VELOCITY = 0x10, MSG_SET_DUTY = 0x11,
    MSG_START_MOTORS = 0x12, MSG_STOP_MOTORS = 0x13, MSG_SET_PID_GAINS = 0x14,
    MSG_ZERO_ENCODERS = 0x15, MSG_SET_COMMAND_TIMEOUT = 0x16, MSG_START_TELEMETRY = 0x17,
    MSG_STOP_TELEMETRY = 0x18, MSG_EMERGENCY_STOP = 0x19, MSG_CLEAR_EMERGENCY_STOP = 0x1A,
    MSG_ACK = 0x80, MSG_NACK = 0x81, MSG_HELLO_REPLY = 0x82, MSG_STATUS = 0x83,
    MSG_TELEMETRY = 0x84, MSG_POSE = 0x85
};
enum { ERR_MALFORMED = 1, ERR_UNKNOWN_TYPE = 2, ERR_OUT_OF_RANGE = 3, ERR_ESTOPPED = 4 };
enum {
    FLAG_MOTORS_ON = 0x01, FLAG_WATCHDOG_TRIPPED = 0x02, FLAG_ESTOPPED = 0x04,
    FLAG_OPEN_LOOP = 0x08, FLAG_TELEMETRY_ON = 0x10
};

typedef struct {
    uint32_t device_id;
    uint8_t fw_major, fw_minor, fw_patch;
    char name[16]; /* ASCII, NUL-padded */
} board_identity_t;

/* One side's leg-velocity PID. Positions in encoder counts since ZERO_ENCODERS. */
typedef struct {
    int16_t kp, ki, kd, kaw, kff;
    int64_t integral_max;        /* |integral| bound that holds the Ki term within Kaw */
    int64_t integral;            /* sum of the position error over ticks, counts x ms */
    int32_t ref;                 /* reference position, counts */
    int32_t ref_rem;             /* its fraction, 1e-6 counts */
    int32_t pos;                 /* leg position, counts */
    int32_t zero_raw;            /* the raw encoder count that reads 0 */
    int32_t hist[BOARD_VELOCITY_WINDOW]; /* positions of the last ticks, a ring */
    int16_t setpoint_mrev;       /* clamped leg-velocity setpoint, milli-rev/s */
    int16_t duty_cmd;            /* open-loop duty (SET_DUTY) */
    int16_t duty;                /* the duty applied now */
} pid_side_t;

typedef struct {
    board_identity_t id;
    decoder_t decoder;
    pid_side_t side[2];
    uint32_t now_us;             /* board time: the scheduled time of the last tick */
    uint32_t next_tick_us;
    uint32_t last_command_us;    /* last SET_LEG_VELOCITY, SET_DUTY or START_MOTORS */
    uint32_t watchdog_trip_us;
    uint32_t tx_frames;
    uint32_t tel_epoch_us;       /* start of the telemetry second in progress */
    uint32_t tel_next_us;        /* when the next sample is due */
    uint32_t sample_index;       /* samples since START_TELEMETRY */
    uint32_t leg_velocity_frames;/* well-formed SET_LEG_VELOCITY frames, ACKed or NACKed */
    uint32_t nacks_sent;
    uint16_t tel_phase;          /* sample_index modulo the rate */
    uint16_t tx_seq;
    uint16_t timeout_ms;
    uint16_t telemetry_rate_hz;  /* 0 when off */
    uint16_t watchdog_trips;
    uint8_t motors_on, open_loop, watchdog_tripped, estopped, pid_active;
    uint8_t stream_paused;       /* simulation lockstep: samples only by board_send_sample */
    uint8_t tick_index;          /* position of the newest entry in each side's hist ring */
} board_t;

/* Reset state: motors off, watchdog 250 ms, telemetry off, default gains; sends 0x00. */
void board_init(board_t *b, const board_identity_t *id);
/* The main loop's call: due ticks, then up to BOARD_RX_BUDGET received bytes. */
void board_poll(board_t *b);
/* One millisecond: watchdog, PID (reads the encoders, sets the PWM), telemetry. */
void board_tick(board_t *b);
/* Feeds received bytes; executes and answers every command they complete. */
void board_rx(board_t *b, const uint8_t *data, uint32_t n);
/* Sends one TELEMETRY (and POSE if hal_tracker_pose has one) now, if the stream is on. */
void board_send_sample(board_t *b);
uint8_t board_flags(const board_t *b);

#endif
