//! The policies the tests use (none depend on the wall clock; the sample in `examples/policies/` has schedule
//! windows).

/// Refunds: up to 100.00 allowed (`refunds.small`), up to 5,000.00 with a human (`refunds.large`), anything else
/// denied.
pub const REFUNDS: &str = r#"
@id("refunds.small") @reason("small refunds are routine")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents > 0 && context.params.amount_cents <= 10000 };
@id("refunds.large") @reason("large refunds need a human") @approval("required")
permit(principal, action == Action::"refund.create", resource)
when { context.params has amount_cents && context.params.amount_cents > 10000 && context.params.amount_cents <= 500000 };
"#;

/// [`REFUNDS`] and `extra` policies.
pub fn refunds_and(extra: &str) -> String {
    format!("{REFUNDS}\n{extra}")
}
