//! Adam (Kingma & Ba 2015) over named candle variables, with its state exposed so checkpoints can save and
//! restore it exactly. On the CPU the moments live in plain vectors and one fused pass per variable updates
//! the moments and the variable in place ([`AdamStep::apply`], also called by the fused Bayesian passes);
//! on other devices the update is composed of candle ops.

use crate::kernels::isa::widest;
use crate::kernels::tensor_values::{values, values_mut};
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use rayon::prelude::*;

const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-8;
/// Elements per unit of parallel work in the fused update.
const CHUNK: usize = 16384;

/// The first and second moments of one variable.
enum Moments {
    /// Host vectors, updated in place by the fused pass (variables on the CPU).
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Tensors on the variable's device, updated by candle ops.
    Device { m: Tensor, v: Tensor },
}

/// Adam with bias correction. State is one first and second moment per variable.
pub struct Adam {
    vars: Vec<(String, Var)>,
    moments: Vec<Moments>,
    /// Steps taken.
    pub t: u64,
}

/// The constants of one Adam step: step size and bias corrections.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    lr: f32,
    inv_c1: f32,
    inv_c2: f32,
}

impl AdamStep {
    /// One element's update: moments, then `p -= lr m_hat / (sqrt(v_hat) + eps)`.
    #[inline(always)]
    pub fn apply(&self, p: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        *m = BETA1 * *m + (1.0 - BETA1) * g;
        *v = BETA2 * *v + (1.0 - BETA2) * (g * g);
        *p -= self.lr * (*m * self.inv_c1) / ((*v * self.inv_c2).sqrt() + EPS);
    }
}

impl AdamStep {
    /// [`AdamStep::apply`] to every element of `p` with its moments and gradient (slices of one length).
    #[inline(always)]
    pub fn apply_all(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        assert!(m.len() == p.len() && v.len() == p.len() && g.len() == p.len());
        // Zipped, so the loop has no bounds checks and vectorises.
        for (((p, m), v), g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            self.apply(p, m, v, *g);
        }
    }
}

/// Adam's fused pass over one variable on the CPU with its host moments and gradient values.
fn host_update(var: &Var, m: &mut [f32], v: &mut [f32], g: &[f32], step: &AdamStep) -> Result<()> {
    if g.len() != m.len() {
        candle_core::bail!("a gradient of {} values for a variable of {}", g.len(), m.len());
    }
    values_mut(var.as_tensor(), |p| {
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| {
                widest(
                    #[inline(always)]
                    || step.apply_all(p, m, v, g),
                )
            })
    })
}

impl Adam {
    pub fn new(vars: Vec<(String, Var)>) -> Result<Self> {
        let moments = vars
            .iter()
            .map(|(_, v)| {
                let t = v.as_tensor();
                Ok(if t.device().is_cpu() {
                    Moments::Host { m: vec![0.0; t.elem_count()], v: vec![0.0; t.elem_count()] }
                } else {
                    Moments::Device { m: t.zeros_like()?, v: t.zeros_like()? }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { vars, moments, t: 0 })
    }

    /// Starts step `t + 1` with step size `lr`: the constants every element's update of this step uses.
    pub fn begin_step(&mut self, lr: f64) -> AdamStep {
        self.t += 1;
        let c1 = 1.0 - (BETA1 as f64).powi(self.t as i32);
        let c2 = 1.0 - (BETA2 as f64).powi(self.t as i32);
        AdamStep { lr: lr as f32, inv_c1: (1.0 / c1) as f32, inv_c2: (1.0 / c2) as f32 }
    }

    /// One update with step size `lr` of every variable that has a gradient in `grads`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let step = self.begin_step(lr);
        self.update_from(grads, &step, |_| false)
    }

    /// Updates, with `step`, every variable that has a gradient in `grads` and that `skip` does not name.
    pub fn update_from(&mut self, grads: &GradStore, step: &AdamStep, skip: impl Fn(&str) -> bool) -> Result<()> {
        for ((name, var), moments) in self.vars.iter().zip(&mut self.moments) {
            if skip(name) {
                continue;
            }
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            match moments {
                Moments::Host { m, v } => values(g, |g| host_update(var, m, v, g, step))??,
                Moments::Device { m, v } => {
                    // Detached: the moments must not keep the autograd graph of every past step alive.
                    let g = g.detach();
                    *m = ((&*m * BETA1 as f64)? + (&g * (1.0 - BETA1 as f64))?)?.detach();
                    *v = ((&*v * BETA2 as f64)? + (g.sqr()? * (1.0 - BETA2 as f64))?)?.detach();
                    let update =
                        ((&*m * step.inv_c1 as f64)? / (&*v * step.inv_c2 as f64)?.sqrt()?.affine(1.0, EPS as f64)?)?;
                    var.set(&(var.as_tensor() - (update * step.lr as f64)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// The position of the variable `name`.
    fn index(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|(n, _)| n == name)
    }

    /// Updates, with `step`, the variable `name` (on the CPU) from its gradient `g` given as values.
    pub fn update_host(&mut self, name: &str, step: &AdamStep, g: &[f32]) -> Result<()> {
        let Some(k) = self.index(name) else { candle_core::bail!("Adam holds no variable `{name}`") };
        match &mut self.moments[k] {
            Moments::Host { m, v } => host_update(&self.vars[k].1, m, v, g, step),
            Moments::Device { .. } => candle_core::bail!("`{name}` is not on the CPU"),
        }
    }

    /// The host moments `(m, v)` of the variable `name`, for a fused pass that updates it itself; `None` for a
    /// variable on another device or an unknown name.
    pub fn host_moments(&mut self, name: &str) -> Option<(&mut [f32], &mut [f32])> {
        let k = self.index(name)?;
        match &mut self.moments[k] {
            Moments::Host { m, v } => Some((m, v)),
            Moments::Device { .. } => None,
        }
    }

    /// The moments `(m, v)` of two variables at once (a Bayesian tensor's mu and rho).
    pub fn host_moments_pair(&mut self, a: &str, b: &str) -> Option<[(&mut [f32], &mut [f32]); 2]> {
        let (ka, kb) = (self.index(a)?, self.index(b)?);
        if ka == kb {
            return None;
        }
        let (lo, hi) = self.moments.split_at_mut(ka.max(kb));
        let (x, y) = (&mut lo[ka.min(kb)], &mut hi[0]);
        let (x, y) = if ka < kb { (x, y) } else { (y, x) };
        match (x, y) {
            (Moments::Host { m: m1, v: v1 }, Moments::Host { m: m2, v: v2 }) => Some([(m1, v1), (m2, v2)]),
            _ => None,
        }
    }

    /// The variables and the state tensors, named `adam.m.{name}` and `adam.v.{name}`.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for ((name, var), moments) in self.vars.iter().zip(&self.moments) {
            let (m, v) = match moments {
                Moments::Host { m, v } => {
                    let shape = var.as_tensor().shape();
                    (
                        Tensor::from_slice(m, shape, &candle_core::Device::Cpu)?,
                        Tensor::from_slice(v, shape, &candle_core::Device::Cpu)?,
                    )
                }
                Moments::Device { m, v } => (m.clone(), v.clone()),
            };
            out.push((format!("adam.m.{name}"), m));
            out.push((format!("adam.v.{name}"), v));
        }
        Ok(out)
    }

    /// Restores a moment tensor by its state name; returns false if the name is not one of ours.
    pub fn set_state(&mut self, name: &str, value: Tensor) -> Result<bool> {
        for ((var_name, var), moments) in self.vars.iter().zip(&mut self.moments) {
            let first = name.strip_prefix("adam.m.") == Some(var_name);
            if !first && name.strip_prefix("adam.v.") != Some(var_name) {
                continue;
            }
            if value.dims() != var.as_tensor().dims() {
                candle_core::bail!(
                    "`{name}` has shape {:?}, the variable has {:?}",
                    value.dims(),
                    var.as_tensor().dims()
                );
            }
            match moments {
                Moments::Host { m, v } => {
                    let target = if first { m } else { v };
                    *target = value.flatten_all()?.to_vec1::<f32>()?;
                }
                Moments::Device { m, v } => *(if first { m } else { v }) = value,
            }
            return Ok(true);
        }
        Ok(false)
    }

    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adam_minimises_a_quadratic() {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("x".into(), x.clone())]).unwrap();
        for _ in 0..500 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            adam.step(&loss.backward().unwrap(), 0.05).unwrap();
        }
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|v| v.abs() < 1e-2), "{v:?}");
    }

    #[test]
    fn the_first_step_moves_every_weight_by_the_learning_rate_against_its_gradient() {
        // With bias correction, m_hat = g and v_hat = g^2 after one step: the update is lr * sign(g).
        let x = Var::new(&[1.0f32, -1.0, 0.5], &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("x".into(), x.clone())]).unwrap();
        let loss =
            (x.as_tensor() * &Tensor::new(&[2.0f32, 3.0, -0.1], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap();
        adam.step(&loss.backward().unwrap(), 0.01).unwrap();
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        for (got, want) in v.iter().zip([0.99f32, -1.01, 0.51]) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
    }
}
