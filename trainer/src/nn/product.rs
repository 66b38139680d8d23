//! `x W^T` for the fused training step, as a candle custom op with its own backward pass: `W`'s gradient
//! `g^T x` comes out as one contiguous `[out, in]` product (candle's `matmul` of a transposed weight gives it
//! transposed, then copies it), and `x`'s gradient `g W` is computed only when `x` needs one. The first
//! layer's input is data: skipping its gradient saves two of a local-reparameterization step's twelve matrix
//! products, the largest two.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// The product of `[batch, in]` inputs with the transpose of `[out, in]` weights.
pub struct WeightProduct {
    /// Whether the backward pass returns the input's gradient.
    pub input_grad: bool,
}

impl WeightProduct {
    /// `x W^T`, differentiable in `w` (and in `x` when `input_grad`).
    pub fn apply(x: &Tensor, w: &Tensor, input_grad: bool) -> Result<Tensor> {
        x.apply_op2(w, WeightProduct { input_grad })
    }
}

impl CustomOp2 for WeightProduct {
    fn name(&self) -> &'static str {
        "weight-product"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout, w: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (&[m, k], &[n, k2]) = (xl.dims(), wl.dims()) else {
            bail!("weight-product: expected [batch, in] and [out, in], got {:?} and {:?}", xl.dims(), wl.dims())
        };
        if k != k2 {
            bail!("weight-product: {k} inputs against weights for {k2}")
        }
        let out = x.matmul(w, (1, m, n, k), xl, &wl.transpose(0, 1)?)?;
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_w = grad.t()?.matmul(x)?;
        let grad_x = if self.input_grad { Some(grad.matmul(w)?) } else { None };
        Ok((grad_x, Some(grad_w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradients_equal_candles_matmul() {
        let dev = Device::Cpu;
        let x = Var::new(&[[1.0f32, -2.0, 0.5], [0.3, 0.0, 4.0]], &dev).unwrap();
        let w = Var::new(&[[0.2f32, 1.0, -1.0], [2.0, 0.1, 0.0], [-0.5, 0.5, 3.0], [1.0, 1.0, 1.0]], &dev).unwrap();
        let weights = Tensor::new(&[[1.0f32, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]], &dev).unwrap();
        let ours = WeightProduct::apply(x.as_tensor(), w.as_tensor(), true).unwrap();
        let theirs = x.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap();
        assert_eq!(ours.to_vec2::<f32>().unwrap(), theirs.to_vec2::<f32>().unwrap());
        let g1 = (ours * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (theirs * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let a = g1.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            assert_eq!(a, g2.get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap());
        }
        let without = WeightProduct::apply(x.as_tensor(), w.as_tensor(), false).unwrap();
        let g = (without * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(g.get(x.as_tensor()).is_none() && g.get(w.as_tensor()).is_some());
    }
}
