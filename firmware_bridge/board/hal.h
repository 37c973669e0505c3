/* The hardware a board port provides: the only functions the firmware core calls.
 *
 * A port implements every function below for its microcontroller (docs/firmware.md,
 * "Porting"). The core calls them from board_poll() and board_tick() only, never from an
 * interrupt, and never re-entrantly. Units are the wire's: duty -4000..4000, encoder
 * counts (65536 per leg revolution), gyro 16.4 LSB per deg/s, accel 4096 LSB per g, mV.
 * Side 0 is the left side, side 1 the right.
 */
#ifndef ROACH_HAL_H
#define ROACH_HAL_H

#include <stddef.h>
#include <stdint.h>

#define HAL_LEFT 0u
#define HAL_RIGHT 1u

/* Microseconds since reset, free-running, wrapping at 2^32. Monotonic between wraps;
 * must not stop while interrupts are masked for a few microseconds. */
uint32_t hal_micros(void);

/* Sets the H-bridge of `side` to `duty` (-4000..4000, already clamped by the core;
 * 0 = both low-side switches on, so the shorted motor brakes). Positive duty drives the
 * legs forward, the direction in which the side's encoder counts up. Takes effect within
 * one PWM period; must not block. */
void hal_pwm_set(uint8_t side, int16_t duty);

/* The leg encoder of `side`: counts since the encoder's zero (a magnetic encoder's
 * absolute angle, extended across revolutions), 65536 per leg revolution, counting up
 * when the legs move the robot forward; wraps modulo 2^32. The board reports it as is
 * until ZERO_ENCODERS. A 16-bit hardware counter extended in software is fine if it is
 * read at least once per half revolution (the core reads it every tick). */
int32_t hal_encoder_count(uint8_t side);

/* One IMU sample, body frame (x forward, y left, z up): gyro in 16.4 LSB per deg/s
 * (positive z = turning left), accel (specific force) in 4096 LSB per g. Called only
 * when a telemetry sample is due; may take up to 100 us (an SPI burst read). */
void hal_imu_sample(int16_t gyro[3], int16_t accel[3]);

/* Back-EMF of `side` in mV (signed, positive when the legs turn forward) and the
 * battery voltage in mV, from the last ADC conversion. Called with the IMU sample. */
int16_t hal_adc_bemf_mv(uint8_t side);
int16_t hal_adc_battery_mv(void);

/* UART, 1 000 000 baud 8N1. hal_uart_read: the next received byte (0..255), or -1 if
 * none is waiting; the port buffers received bytes (an interrupt- or DMA-filled ring of
 * at least 256 bytes). hal_uart_write: queues `n` bytes (n <= 249) for sending and
 * returns at once; the port's transmit ring holds at least 512 bytes and drops what does
 * not fit rather than block (the host counts the lost frame as a sequence gap). */
int hal_uart_read(void);
void hal_uart_write(const uint8_t *data, size_t n);

/* The motion-capture pose, where the board has a feed of it (the simulator does; a real
 * board does not and returns 0). Fills the 24 payload bytes of POSE before its
 * timestamp: x, y, z, roll, pitch, yaw as little-endian IEEE-754 f32. The core copies the
 * bytes and does no arithmetic on them. Returns 1 if `out` was filled. */
int hal_tracker_pose(uint8_t out[24]);

#endif
