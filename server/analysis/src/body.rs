//! Control-flow facts about one function body, gathered operator by operator while the
//! validator checks the same operators (one decoding pass).
//!
//! The scanner keeps, like a validator, a stack of control frames and whether the current
//! code is reachable. It also tracks "clean" reachability: reachable along some path that has
//! not called the function itself. From that it decides:
//! - a `loop` is inescapable when its `end` is not reachable by falling through, no branch
//!   inside it targets a label outside it, and nothing inside it returns, tail-calls, throws or
//!   traps (`unreachable`). Branches in dead code still count as exits (conservative);
//! - a function recurses without a base case when a reachable direct call to itself exists and
//!   no return, fall-through, trap or throw is reachable cleanly.

use wasmparser::{Catch, Operator};

/// Something the body scan found; turned into a [`crate::Finding`] by the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFact {
    /// A loop nothing can leave, at this offset.
    InescapableLoop { offset: usize },
    /// The compilers' halt idiom: an inescapable loop whose whole body is `br 0`, followed by
    /// `unreachable` (what Rust's `loop {}` on a path it proves dead compiles to).
    HaltLoop { offset: usize },
    /// The function calls itself on every path; offset of the first self call.
    UnboundedRecursion { offset: usize },
    /// `memory.grow`/`table.grow` whose operand is a parameter or a loaded value, with no
    /// comparison earlier in the function.
    GrowFromInput {
        offset: usize,
        table: bool,
        source: Source,
    },
    /// `memory.grow` inside a loop whose result is dropped.
    GrowInLoopDropped { offset: usize },
}

/// Where an input-driven growth operand came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A parameter never assigned before the growth.
    Param(u32),
    /// A value loaded from linear memory.
    Load,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    Loop,
    If,
    Else,
    Try,
}

struct Frame {
    kind: Kind,
    offset: usize,
    /// Index of the opening operator in the function.
    op_index: usize,
    /// Reachability when the frame was entered (for `if` without `else`, `catch`).
    entry: (bool, bool),
    /// Reachability flowing to the frame's end from finished arms (`then`, `try`, `catch`).
    arms: (bool, bool),
    /// Reachability flowing to the frame's end from branches targeting it.
    branched: (bool, bool),
    /// Lowest frame index targeted by a branch anywhere inside this frame.
    min_target: usize,
    /// A return, tail call, throw or trap occurs inside this frame.
    escapes: bool,
    /// An inescapable loop inside this frame was already reported.
    reported: bool,
}

impl Frame {
    fn new(kind: Kind, offset: usize, op_index: usize, index: usize, entry: (bool, bool)) -> Self {
        Frame {
            kind,
            offset,
            op_index,
            entry,
            arms: (false, false),
            branched: (false, false),
            min_target: index,
            escapes: false,
            reported: false,
        }
    }
}

#[derive(Clone, Copy, Default)]
enum Prev {
    Param(u32),
    Load,
    #[default]
    Other,
}

/// Per-function scanner; reuse it across functions with [`BodyScan::reset`].
#[derive(Default)]
pub struct BodyScan {
    func: u32,
    params: u32,
    stack: Vec<Frame>,
    /// (reachable, reachable without a self call)
    live: (bool, bool),
    loops: u32,
    params_written: Vec<bool>,
    prev: Prev,
    compared: bool,
    pending_grow_in_loop: Option<usize>,
    self_call: Option<usize>,
    clean_exit: bool,
    op_index: usize,
    prev_br_self: bool,
    /// An inescapable loop just ended: (offset, whole body was `br 0`).
    pending_loop: Option<(usize, bool)>,
    /// This function grows memory inside a loop (used by the suspicious-start pattern).
    pub grows_in_loop: bool,
    /// Facts found in this function.
    pub facts: Vec<BodyFact>,
}

impl BodyScan {
    /// Prepare for function `func` (absolute index) with `params` parameters.
    pub fn reset(&mut self, func: u32, params: u32, offset: usize) {
        self.func = func;
        self.params = params;
        self.stack.clear();
        self.stack
            .push(Frame::new(Kind::Block, offset, 0, 0, (true, true)));
        self.op_index = 0;
        self.prev_br_self = false;
        self.pending_loop = None;
        self.live = (true, true);
        self.loops = 0;
        self.params_written.clear();
        self.params_written.resize(params as usize, false);
        self.prev = Prev::Other;
        self.compared = false;
        self.pending_grow_in_loop = None;
        self.self_call = None;
        self.clean_exit = false;
        self.grows_in_loop = false;
        self.facts.clear();
    }

    fn target(&self, depth: u32) -> usize {
        // Validation (run on the same operator first) guarantees the depth is in range.
        self.stack
            .len()
            .saturating_sub(1)
            .saturating_sub(depth as usize)
    }

    fn branch(&mut self, depth: u32) {
        let t = self.target(depth);
        let live = self.live;
        if let Some(inner) = self.stack.last_mut() {
            inner.min_target = inner.min_target.min(t);
        }
        if let Some(frame) = self.stack.get_mut(t)
            && frame.kind != Kind::Loop
        {
            frame.branched.0 |= live.0;
            frame.branched.1 |= live.1;
        }
    }

    fn escape(&mut self, clean_exit: bool) {
        if let Some(inner) = self.stack.last_mut() {
            inner.escapes = true;
        }
        if clean_exit && self.live.1 {
            self.clean_exit = true;
        }
        self.live = (false, false);
    }

    fn push(&mut self, kind: Kind, offset: usize) {
        if kind == Kind::Loop {
            self.loops += 1;
        }
        let index = self.stack.len();
        self.stack
            .push(Frame::new(kind, offset, self.op_index, index, self.live));
    }

    fn next_arm(&mut self, kind: Kind) {
        let live = self.live;
        if let Some(frame) = self.stack.last_mut() {
            frame.arms.0 |= live.0;
            frame.arms.1 |= live.1;
            frame.kind = kind;
            self.live = frame.entry;
        }
    }

    fn end(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let index = self.stack.len();
        let mut reported = frame.reported;
        if frame.kind == Kind::Loop {
            self.loops = self.loops.saturating_sub(1);
            let leaves = self.live.0 || frame.min_target < index || frame.escapes;
            if !leaves && !frame.reported {
                let halt = self.prev_br_self && self.op_index == frame.op_index + 2;
                self.pending_loop = Some((frame.offset, halt));
                reported = true;
            }
        } else {
            let implicit_else = frame.kind == Kind::If;
            self.live.0 |= frame.arms.0 || frame.branched.0 || (implicit_else && frame.entry.0);
            self.live.1 |= frame.arms.1 || frame.branched.1 || (implicit_else && frame.entry.1);
        }
        match self.stack.last_mut() {
            Some(parent) => {
                parent.min_target = parent.min_target.min(frame.min_target);
                parent.escapes |= frame.escapes;
                parent.reported |= reported;
            }
            None => self.clean_exit |= self.live.1,
        }
    }

    fn grow(&mut self, offset: usize, table: bool) {
        if !table && self.loops > 0 {
            self.grows_in_loop = true;
            if self.live.0 {
                self.pending_grow_in_loop = Some(offset);
            }
        }
        if self.compared || !self.live.0 {
            return;
        }
        let source = match self.prev {
            Prev::Param(i) => Source::Param(i),
            Prev::Load => Source::Load,
            Prev::Other => return,
        };
        self.facts.push(BodyFact::GrowFromInput {
            offset,
            table,
            source,
        });
    }

    /// Feed one operator (the validator checks it right after).
    #[inline(always)]
    pub fn op(&mut self, offset: usize, op: &Operator<'_>) {
        if let Some((offset, halt)) = self.pending_loop.take() {
            self.facts
                .push(if halt && matches!(op, Operator::Unreachable) {
                    BodyFact::HaltLoop { offset }
                } else {
                    BodyFact::InescapableLoop { offset }
                });
        }
        if let Some(grow) = self.pending_grow_in_loop.take()
            && matches!(op, Operator::Drop)
        {
            self.facts
                .push(BodyFact::GrowInLoopDropped { offset: grow });
        }
        let mut prev = Prev::Other;
        match *op {
            Operator::Block { .. } => self.push(Kind::Block, offset),
            Operator::Loop { .. } => self.push(Kind::Loop, offset),
            Operator::If { .. } => self.push(Kind::If, offset),
            Operator::Try { .. } => self.push(Kind::Try, offset),
            Operator::TryTable { ref try_table } => {
                for catch in &try_table.catches {
                    let (Catch::One { label, .. }
                    | Catch::OneRef { label, .. }
                    | Catch::All { label }
                    | Catch::AllRef { label }) = *catch;
                    self.branch(label);
                }
                self.push(Kind::Block, offset);
            }
            Operator::Else => self.next_arm(Kind::Else),
            Operator::Catch { .. } | Operator::CatchAll => self.next_arm(Kind::Try),
            Operator::End => self.end(),
            Operator::Delegate { .. } => self.end(),
            Operator::Br { relative_depth } => {
                self.branch(relative_depth);
                self.live = (false, false);
            }
            Operator::BrIf { relative_depth }
            | Operator::BrOnNull { relative_depth }
            | Operator::BrOnNonNull { relative_depth }
            | Operator::BrOnCast { relative_depth, .. }
            | Operator::BrOnCastFail { relative_depth, .. } => self.branch(relative_depth),
            Operator::BrTable { ref targets } => {
                for depth in targets.targets().flatten() {
                    self.branch(depth);
                }
                self.branch(targets.default());
                self.live = (false, false);
            }
            Operator::Return
            | Operator::Unreachable
            | Operator::Throw { .. }
            | Operator::ThrowRef
            | Operator::Rethrow { .. }
            | Operator::ReturnCallIndirect { .. }
            | Operator::ReturnCallRef { .. } => self.escape(true),
            Operator::ReturnCall { function_index } => {
                let is_self = function_index == self.func;
                if is_self && self.live.0 && self.self_call.is_none() {
                    self.self_call = Some(offset);
                }
                self.escape(!is_self);
            }
            Operator::Call { function_index } if function_index == self.func => {
                if self.live.0 && self.self_call.is_none() {
                    self.self_call = Some(offset);
                }
                self.live.1 = false;
            }
            Operator::LocalGet { local_index } if local_index < self.params => {
                let written = self.params_written.get(local_index as usize).copied();
                if written == Some(false) {
                    prev = Prev::Param(local_index);
                }
            }
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                if let Some(w) = self.params_written.get_mut(local_index as usize) {
                    *w = true;
                }
            }
            Operator::I32Load { .. }
            | Operator::I64Load { .. }
            | Operator::I32Load8U { .. }
            | Operator::I32Load16U { .. }
            | Operator::I64Load32U { .. }
            | Operator::I32AtomicLoad { .. }
            | Operator::I64AtomicLoad { .. } => prev = Prev::Load,
            Operator::I32LtS
            | Operator::I32LtU
            | Operator::I32GtS
            | Operator::I32GtU
            | Operator::I32LeS
            | Operator::I32LeU
            | Operator::I32GeS
            | Operator::I32GeU
            | Operator::I64LtS
            | Operator::I64LtU
            | Operator::I64GtS
            | Operator::I64GtU
            | Operator::I64LeS
            | Operator::I64LeU
            | Operator::I64GeS
            | Operator::I64GeU => self.compared = true,
            Operator::MemoryGrow { .. } => self.grow(offset, false),
            Operator::TableGrow { .. } => self.grow(offset, true),
            _ => {}
        }
        self.prev = prev;
        self.prev_br_self = matches!(op, Operator::Br { relative_depth: 0 });
        self.op_index += 1;
    }

    /// Call after the function's final `end`: adds the recursion fact when it applies.
    pub fn finish(&mut self) {
        if let Some((offset, _)) = self.pending_loop.take() {
            self.facts.push(BodyFact::InescapableLoop { offset });
        }
        if let Some(offset) = self.self_call
            && !self.clean_exit
        {
            self.facts.push(BodyFact::UnboundedRecursion { offset });
        }
    }
}
