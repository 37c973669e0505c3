/* The simulated board's HAL state and entry points (sim_hal.c), for the host build. */
#ifndef ROACH_SIM_HAL_H
#define ROACH_SIM_HAL_H

#include <stdint.h>

#include "board.h"

#define SIM_TX_CAPACITY 8192u

typedef struct {
    uint32_t micros;
    int32_t encoder[2];
    int16_t duty[2];
    int16_t gyro[3], accel[3], bemf_mv[2], battery_mv;
    uint8_t pose[24];
    int32_t has_pose;
    void (*sample)(void); /* fills gyro .. has_pose; NULL: zeros, no pose */
    uint32_t sampled_at;  /* micros + 1 of the last sample call, 0 = none */
    uint32_t tx_len, tx_dropped;
    uint8_t tx[SIM_TX_CAPACITY];
} sim_io_t;

extern sim_io_t sim_io;
extern board_t sim_board;

void sim_init(uint32_t micros, int32_t enc_left, int32_t enc_right, const char *name,
              uint32_t device_id);
uint32_t sim_tick(uint32_t micros, int32_t enc_left, int32_t enc_right);
void sim_rx(const uint8_t *data, uint32_t n);
void sim_send_sample(void);
void sim_set_paused(int paused);
void sim_stats(uint32_t out[21]);
uint32_t sim_board_size(void);
uint32_t sim_io_size(void);
void sim_decoder_reset(int known);
uint32_t sim_decoder_feed(const uint8_t *data, uint32_t n, uint8_t *out, uint32_t cap);
void sim_decoder_counters(uint32_t out[11]);

#endif
