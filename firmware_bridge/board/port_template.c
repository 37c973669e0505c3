/* A board port in outline: the HAL of hal.h over placeholder registers, and the main loop.
 *
 * `make firmware` links the core with this file for each microcontroller to measure the
 * flash and RAM the firmware needs; a real port replaces each function body with its
 * chip's peripheral access (docs/firmware.md, "Porting") and its start-up code sets up the
 * clocks, the PWM timer, the encoder inputs, the IMU bus, the ADC and the UART first.
 */
#include "board.h"
#include "hal.h"

/* Placeholders for memory-mapped peripherals (a real port uses its vendor's headers). */
static volatile uint32_t timer_us;
static volatile int32_t encoder_reg[2];
static volatile int16_t pwm_reg[2];
static volatile int16_t adc_reg[3];
static volatile uint8_t uart_rx_ring[256], uart_tx_ring[512];
static volatile uint16_t rx_head, rx_tail, tx_head, tx_tail;

uint32_t hal_micros(void) { return timer_us; }
void hal_pwm_set(uint8_t side, int16_t duty) { pwm_reg[side & 1u] = duty; }
int32_t hal_encoder_count(uint8_t side) { return encoder_reg[side & 1u]; }
void hal_imu_sample(int16_t gyro[3], int16_t accel[3]) {
    for (int i = 0; i < 3; i++) gyro[i] = accel[i] = 0;
}
int16_t hal_adc_bemf_mv(uint8_t side) { return adc_reg[side & 1u]; }
int16_t hal_adc_battery_mv(void) { return adc_reg[2]; }
int hal_tracker_pose(uint8_t out[24]) {
    (void)out;
    return 0; /* no motion-capture feed on the board */
}

/* The receive interrupt appends to uart_rx_ring; the main loop takes from it. */
int hal_uart_read(void) {
    if (rx_tail == rx_head) return -1;
    uint8_t c = uart_rx_ring[rx_tail];
    rx_tail = (uint16_t)((rx_tail + 1u) % sizeof uart_rx_ring);
    return c;
}
/* The transmit interrupt (or DMA) drains uart_tx_ring; what does not fit is dropped. */
void hal_uart_write(const uint8_t *data, size_t n) {
    uint16_t used = (uint16_t)((tx_head + sizeof uart_tx_ring - tx_tail) % sizeof uart_tx_ring);
    if (n > sizeof uart_tx_ring - 1u - used) return;
    for (size_t i = 0; i < n; i++) {
        uart_tx_ring[tx_head] = data[i];
        tx_head = (uint16_t)((tx_head + 1u) % sizeof uart_tx_ring);
    }
}

static board_t board; /* the whole firmware state, allocated statically */

int main(void) {
    static const board_identity_t id = {0x524F4143u, 1, 0, 0, "roach-board"};
    board_init(&board, &id);
    for (;;) board_poll(&board);
}
