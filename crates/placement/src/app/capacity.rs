//! Capacity and unit checks of one inventory, shared by allocation writes, inventory updates,
//! provider filters and the candidate search.

use crate::Inventory;

/// `(total - reserved) * allocation_ratio`, rounded down (allocations are integers, so
/// `used <= capacity` is the same test on the exact product).
#[expect(
    clippy::cast_possible_truncation,
    reason = "a float-to-integer `as` saturates: a huge product is i64::MAX, as intended"
)]
pub fn capacity(inv: &Inventory) -> i64 {
    let c = ((inv.total - inv.reserved) as f64 * inv.allocation_ratio).floor();
    if c.is_finite() {
        c as i64
    } else {
        i64::MAX
    }
}

/// Whether one allocation of `amount` respects `min_unit`, `max_unit` and `step_size`.
pub fn units_ok(inv: &Inventory, amount: i64) -> bool {
    amount >= inv.min_unit
        && amount <= inv.max_unit
        && inv.step_size > 0
        && amount % inv.step_size == 0
}

/// Whether `amount` more fits next to `used`.
pub fn fits(inv: &Inventory, used: i64, amount: i64) -> bool {
    used.saturating_add(amount) <= capacity(inv)
}

/// Whether a request of `amount` can be placed: units and free capacity.
pub fn can_serve(inv: &Inventory, used: i64, amount: i64) -> bool {
    units_ok(inv, amount) && fits(inv, used, amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(total: i64, reserved: i64, ratio: f64) -> Inventory {
        Inventory {
            total,
            reserved,
            allocation_ratio: ratio,
            ..Inventory::new(total)
        }
    }

    #[test]
    fn capacity_applies_reserved_and_ratio() {
        assert_eq!(capacity(&inv(16, 0, 1.0)), 16);
        assert_eq!(capacity(&inv(16, 4, 16.0)), 192);
        assert_eq!(capacity(&inv(10, 1, 1.5)), 13);
        assert_eq!(capacity(&inv(4, 4, 1.0)), 0);
    }

    #[test]
    fn units_follow_min_max_and_step() {
        let mut i = inv(1024, 0, 1.0);
        i.min_unit = 2;
        i.max_unit = 512;
        i.step_size = 2;
        assert!(units_ok(&i, 2));
        assert!(units_ok(&i, 512));
        assert!(!units_ok(&i, 1));
        assert!(!units_ok(&i, 3));
        assert!(!units_ok(&i, 514));
    }

    #[test]
    fn fits_within_capacity_only() {
        let i = inv(8, 2, 2.0);
        assert!(fits(&i, 10, 2));
        assert!(!fits(&i, 10, 3));
        assert!(can_serve(&i, 0, 12));
        assert!(!can_serve(&i, 0, 0));
    }
}
