//! LLM calls: what `#[openai_guard]` records about them.
//!
//! When a guarded fn's `Ok` value implements [`Usage`], the evidence of the call records the model and the
//! token counts. The `async-openai` feature implements it for `async_openai`'s chat completion response.

pub use haltstate_types::LlmUsage;

/// A response that says which model answered and how many tokens it used.
///
/// ```
/// use haltstate::openai::{LlmUsage, Usage};
///
/// struct Answer { model: String, tokens_in: u64, tokens_out: u64 }
///
/// impl Usage for Answer {
///     fn llm_usage(&self) -> Option<LlmUsage> {
///         Some(LlmUsage {
///             model: self.model.clone(),
///             prompt_tokens: self.tokens_in,
///             completion_tokens: self.tokens_out,
///             total_tokens: self.tokens_in + self.tokens_out,
///         })
///     }
/// }
/// ```
pub trait Usage {
    /// The model and token counts, when the response carries them.
    fn llm_usage(&self) -> Option<LlmUsage>;
}

#[cfg(feature = "async-openai")]
impl Usage for async_openai::types::chat::CreateChatCompletionResponse {
    fn llm_usage(&self) -> Option<LlmUsage> {
        let usage = self.usage.as_ref()?;
        Some(LlmUsage {
            model: self.model.clone(),
            prompt_tokens: u64::from(usage.prompt_tokens),
            completion_tokens: u64::from(usage.completion_tokens),
            total_tokens: u64::from(usage.total_tokens),
        })
    }
}
