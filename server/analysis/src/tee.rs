//! A visitor that shows each operator to the body scanner and then hands it to the validator, so
//! a body is decoded once and no `Operator` value is built for the validator. The scanner's
//! `op` is inlined into each visit method, where the operator's kind is known at compile time,
//! so for the many operators it ignores it costs a few stores.

use wasmparser::{FrameKind, FrameStack, Operator, VisitOperator, VisitSimdOperator};

use crate::body::BodyScan;

/// The scanner and the validator's visitor for one operator at `offset`.
pub struct Tee<'s, V> {
    pub inner: V,
    pub scan: &'s mut BodyScan,
    pub offset: usize,
}

macro_rules! define_tee {
    ($(@$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            #[inline]
            #[allow(clippy::clone_on_copy)]
            fn $visit(&mut self $($(,$arg: $argty)*)?) -> Self::Output {
                self.scan.op(self.offset, &Operator::$op $({ $($arg: $arg.clone()),* })?);
                self.inner.$visit($($($arg),*)?)
            }
        )*
    };
}

impl<'a, V> VisitOperator<'a> for Tee<'_, V>
where
    V: VisitOperator<'a, Output = wasmparser::Result<()>>,
{
    type Output = wasmparser::Result<()>;

    /// Called once for each SIMD operator: the scanner sees it as an ordinary operator (none of
    /// the rules look at SIMD), the validator checks it.
    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = Self::Output>> {
        self.scan.op(self.offset, &Operator::Nop);
        self.inner.simd_visitor()
    }

    wasmparser::for_each_visit_operator!(define_tee);
}

impl<V: FrameStack> FrameStack for Tee<'_, V> {
    fn current_frame(&self) -> Option<FrameKind> {
        self.inner.current_frame()
    }
}
