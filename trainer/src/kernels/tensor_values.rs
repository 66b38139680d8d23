//! Plain-slice access to the values of contiguous f32 tensors on the CPU, for the fused passes: reading
//! through candle's storage guard, writing in place through an in-place custom op (no copy, no allocation).

use candle_core::{bail, CpuStorage, InplaceOp1, Layout, Result, Storage, Tensor};
use std::cell::RefCell;

/// Runs `f` on the values of `t` (an f32 tensor on the CPU; a non-contiguous one is copied first).
pub fn values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let owned;
    let t = if t.is_contiguous() {
        t
    } else {
        owned = t.contiguous()?;
        &owned
    };
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(storage_values(cpu, layout)?)),
        _ => bail!("the fused passes need f32 tensors on the CPU, got {:?} on {:?}", t.dtype(), t.device().location()),
    }
}

/// The values of a contiguous f32 CPU storage under `layout` (what a custom op's CPU pass receives).
pub fn storage_values<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else { bail!("the fused passes need f32 tensors") };
    Ok(&v[range(layout)?])
}

/// Runs `f` on the values of `t` (a contiguous f32 tensor on the CPU), which it may change in place. Every
/// tensor that shares `t`'s storage sees the change; candle's autograd does not (use it between steps).
pub fn values_mut<R>(t: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Result<R> {
    let op = InPlace { f: RefCell::new(Some(f)), result: RefCell::new(None) };
    t.inplace_op1(&op)?;
    let result = op.result.into_inner();
    result.ok_or_else(|| candle_core::Error::Msg("the in-place pass did not run".into()))
}

fn range(layout: &Layout) -> Result<std::ops::Range<usize>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => bail!("the fused passes need contiguous tensors"),
    }
}

/// An in-place op that hands the storage's values to a closure once.
struct InPlace<F, R> {
    f: RefCell<Option<F>>,
    result: RefCell<Option<R>>,
}

impl<F: FnOnce(&mut [f32]) -> R, R> InplaceOp1 for InPlace<F, R> {
    fn name(&self) -> &'static str {
        "fused-values-mut"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(v) = storage else { bail!("the fused passes need f32 tensors") };
        let f = self.f.borrow_mut().take().ok_or_else(|| candle_core::Error::Msg("ran twice".into()))?;
        *self.result.borrow_mut() = Some(f(&mut v[range(layout)?]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn changes_in_place_are_seen_by_the_variable_and_its_views() {
        let x = Var::new(&[[1.0f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let view = x.as_tensor().t().unwrap();
        values_mut(x.as_tensor(), |v| v.iter_mut().for_each(|v| *v *= 10.0)).unwrap();
        assert_eq!(view.to_vec2::<f32>().unwrap(), [[10.0, 30.0], [20.0, 40.0]]);
        // A transposed view is read in its own order.
        assert_eq!(values(&view, |v| v.to_vec()).unwrap(), [10.0, 30.0, 20.0, 40.0]);
    }

    #[test]
    fn other_dtypes_are_an_error_not_a_panic() {
        let t = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
        assert!(values(&t, |_| ()).is_err());
        assert!(values_mut(&t, |_| ()).is_err());
    }
}
