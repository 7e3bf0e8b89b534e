//! Whether a guard covers each sink: where it stands (a guarded function, a permit held), or else through the
//! functions that call the one it is in, followed within the crate to a bounded depth.
//!
//! A function is covered when it is guarded, or when every call to it in the crate is covered (where the call
//! stands, or through its own caller). It is unknown when callers outside the crate's sight may exist: it is
//! exported from a library, implements a trait (it may be called through `dyn Trait`), is used as a value, or the
//! chain is deeper than [`MAX_DEPTH`] or loops.

use std::collections::HashMap;

use crate::facts::{Call, Facts};

/// Callers followed at most, from a sink's function outwards.
pub const MAX_DEPTH: usize = 8;
/// Functions visited at most to decide one function (a helper called from hundreds of places, each called from
/// hundreds more, must not take the audit exponential time): past it, the answer is unknown.
pub const MAX_VISITS: usize = 20_000;

/// Where a sink stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Covered(String),
    Uncovered(String),
    Unknown(String),
}

/// A function's verdict, remembered.
pub(crate) struct Coverage<'f> {
    facts: &'f Facts,
    root: &'f std::path::Path,
    by_name: HashMap<&'f str, Vec<&'f Call>>,
    memo: HashMap<usize, Verdict>,
    visits: usize,
}

impl<'f> Coverage<'f> {
    pub(crate) fn new(facts: &'f Facts, root: &'f std::path::Path) -> Self {
        let mut by_name: HashMap<&str, Vec<&Call>> = HashMap::new();
        for call in &facts.calls {
            by_name.entry(call.name.as_str()).or_default().push(call);
        }
        Coverage {
            facts,
            root,
            by_name,
            memo: HashMap::new(),
            visits: 0,
        }
    }

    /// The calls that may reach function `id`: by its name, method calls to methods and path calls to free
    /// functions or (`Type::name`) to methods. A name shared by several functions gives each every such call:
    /// more callers, never fewer.
    fn callers(&self, id: usize) -> Vec<&'f Call> {
        let function = &self.facts.functions[id];
        self.by_name
            .get(function.name.as_str())
            .map(|calls| {
                calls
                    .iter()
                    .copied()
                    .filter(|call| reaches(call, function))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn place(&self, call: &Call) -> String {
        let file = self
            .facts
            .files
            .get(call.file)
            .map_or_else(String::new, |f| {
                f.strip_prefix(self.root).unwrap_or(f).display().to_string()
            });
        format!("{file}:{}", call.line)
    }

    /// The verdict of function `id` (how its body is reached).
    pub(crate) fn function(&mut self, id: usize) -> Verdict {
        self.visits = 0;
        self.function_at(id, 0, &mut Vec::new())
    }

    fn function_at(&mut self, id: usize, depth: usize, path: &mut Vec<usize>) -> Verdict {
        if let Some(known) = self.memo.get(&id) {
            return known.clone();
        }
        let function = &self.facts.functions[id];
        let name = function.qualified.clone();
        self.visits += 1;
        let verdict = if function.guarded {
            Verdict::Covered(format!("guard attribute on {name}"))
        } else if function.entry {
            Verdict::Uncovered(format!("{name} is the program's entry point"))
        } else if function.trait_impl {
            Verdict::Unknown(format!(
                "{name} implements a trait: it may be called through `dyn`"
            ))
        } else if function.reachable_from_outside(self.facts) {
            Verdict::Unknown(format!(
                "{name} is public: callers outside the crate are not seen"
            ))
        } else if self.facts.values.contains(&function.name) {
            Verdict::Unknown(format!(
                "{name} is used as a value: its callers are not followed"
            ))
        } else if path.contains(&id) {
            return Verdict::Unknown(format!("{name} is reached through a loop of calls"));
        } else if self.visits > MAX_VISITS {
            return Verdict::Unknown(format!(
                "{name}'s callers fan out past {MAX_VISITS} functions: not followed"
            ));
        } else if depth >= MAX_DEPTH {
            return Verdict::Unknown(format!(
                "{name} is more than {MAX_DEPTH} calls from a guard"
            ));
        } else {
            let callers = self.callers(id);
            if callers.is_empty() {
                Verdict::Uncovered(format!("{name} is never called in the crate"))
            } else {
                path.push(id);
                let mut unknown = None;
                let mut uncovered = None;
                for call in callers {
                    // A closure is taken to run where it is written (as `iter().for_each(..)` does).
                    if call.covered {
                        continue;
                    }
                    let verdict = self.function_at(call.caller, depth + 1, path);
                    match verdict {
                        Verdict::Covered(_) => {}
                        Verdict::Uncovered(why) => {
                            // One unguarded way in settles it.
                            uncovered =
                                Some(format!("called at {} unguarded: {why}", self.place(call)));
                            break;
                        }
                        Verdict::Unknown(why) => {
                            unknown.get_or_insert(format!("called at {}: {why}", self.place(call)));
                        }
                    }
                }
                path.pop();
                match (uncovered, unknown) {
                    (Some(why), _) => Verdict::Uncovered(why),
                    (None, Some(why)) => Verdict::Unknown(why),
                    (None, None) => {
                        Verdict::Covered(format!("every call to {name} in the crate is guarded"))
                    }
                }
            }
        };
        // A verdict reached through a loop depends on where the walk started: only settled ones are kept.
        if path.is_empty() {
            self.memo.insert(id, verdict.clone());
        }
        verdict
    }
}

/// Whether `call` may be a call to `function`: `.name(..)` reaches methods; `Type::name(..)` or `Self::name(..)`
/// the methods of that type; `name(..)` and `module::name(..)` free functions.
fn reaches(call: &Call, function: &crate::facts::Function) -> bool {
    if call.method {
        return function.method;
    }
    match call.qualifier.as_deref() {
        Some("Self") => function.method,
        Some(owner) if owner.starts_with(char::is_uppercase) => {
            function.method && function.qualified.rsplit("::").nth(1) == Some(owner)
        }
        _ => !function.method,
    }
}
