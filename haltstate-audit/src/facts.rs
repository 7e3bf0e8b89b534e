//! What the scan of one crate finds, before coverage is decided: its functions, the calls between them, and the
//! sinks, each with whether a permit was held where it stands.

use std::path::PathBuf;

use crate::catalogue::SinkKind;

/// A function (free, method or trait default) of the crate.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Its name.
    pub(crate) name: String,
    /// Its module and, for a method, its type: `crate::billing::Refunds::issue`.
    pub(crate) qualified: String,
    /// A method (called with `.name(..)` or `Type::name(..)`).
    pub(crate) method: bool,
    /// Reachable from outside the crate through `pub` modules (`pub` in a library, every module above `pub`).
    pub(crate) exported: bool,
    /// Declared `pub` in a library (it is exported too when a `pub use` names it, its type or its module).
    pub(crate) public: bool,
    /// Its module's path (`["billing"]`).
    pub(crate) module: Vec<String>,
    /// For a method, its type's name.
    pub(crate) owner: Option<String>,
    /// Implements a trait (it may be called through `dyn Trait`).
    pub(crate) trait_impl: bool,
    /// Carries a guard attribute.
    pub(crate) guarded: bool,
    /// A binary's `main`.
    pub(crate) entry: bool,
}

/// A call from a function to something that may be one of the crate's functions.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The calling function.
    pub(crate) caller: usize,
    /// The called name (a path's last segment, or a method's name).
    pub(crate) name: String,
    /// The segment before the name in a path call (`Type` of `Type::name`, a module), if any.
    pub(crate) qualifier: Option<String>,
    /// Made with method syntax.
    pub(crate) method: bool,
    /// A permit was held where the call stands (or the call is inside a guarded function).
    pub(crate) covered: bool,
    /// Where.
    pub(crate) file: usize,
    pub(crate) line: usize,
}

/// A side effect found in the source.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    /// The function it is in (`None`: a `const` or `static`).
    pub(crate) within: Option<usize>,
    pub(crate) kind: SinkKind,
    /// What was called, as resolved (`std::fs::write`, `.post`).
    pub(crate) what: String,
    /// A permit was held where it stands.
    pub(crate) covered: bool,
    /// Inside a closure.
    pub(crate) in_closure: bool,
    /// The reason of a `// haltstate: allow(reason)` on its line or the line above.
    pub(crate) allowed: Option<String>,
    pub(crate) file: usize,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// One crate target's facts.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) lines: usize,
    pub(crate) functions: Vec<Function>,
    pub(crate) calls: Vec<Call>,
    pub(crate) sinks: Vec<Sink>,
    /// Names used as values (`map(handler)`, a function pointer): such a function's callers are not followed.
    pub(crate) values: std::collections::HashSet<String>,
    /// Names a `pub use` re-exports (a function's or a type's).
    pub(crate) reexported: std::collections::HashSet<String>,
    /// Modules a `pub use module::*` re-exports, as module paths.
    pub(crate) reexported_modules: Vec<Vec<String>>,
}

impl Function {
    /// Whether code outside the crate can call it: exported through `pub` modules or a `pub use`.
    pub(crate) fn reachable_from_outside(&self, facts: &Facts) -> bool {
        self.exported
            || (self.public
                && (facts.reexported.contains(&self.name)
                    || self
                        .owner
                        .as_ref()
                        .is_some_and(|owner| facts.reexported.contains(owner))
                    || facts
                        .reexported_modules
                        .iter()
                        .any(|module| self.module.starts_with(module))))
    }
}
