// optim.cu: fused optimizer updates, one pass over memory per parameter.
//
// Kernels (each as _f32 and _f64; P elements; every array flat and contiguous):
//   sgd_step      p, g, buf                       -> p, buf          (momentum, dampening, Nesterov, L2)
//   adam_step     p, g, m, v, vmax                -> p, m, v, vmax   (Adam/AdamW, amsgrad)
//   rmsprop_step  p, g, s, gavg, buf              -> p, s, gavg, buf (centered, momentum)
//   adagrad_step  p, g, sum                       -> p, sum
//   adadelta_step p, g, s, u                      -> p, s, u
//
// Same formulas and argument order as nnscratch/ref/optim.py (PyTorch's single-tensor optimizers).
// Scalars that the reference computes in Python double before they meet the arrays (1 - beta1,
// 1 - lr * weight_decay, ...) are computed the same way by the glue and passed in the array's type.
//
// Versions:
//   v1 (this) one element per thread, grid-stride. Each element's parameter, gradient and state
//      are read once and written once: Adam moves 4 reads + 3 writes of 4 bytes = 28 B/element for
//      ~15 FLOPs, far below any GPU's FLOP:byte ratio, so it is bound by memory bandwidth. Flags are
//      uniform across the grid, so their branches never diverge.
//   A v2 would update all parameters of a group in one launch (a "multi-tensor apply" over a table
//   of pointers) to save the ~5 us launch cost per small tensor.
#include "common.cuh"

template <typename T>
__device__ void sgd_step_body(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ momentum_buf,
                              T lr, T momentum, T one_minus_dampening, int nesterov, T weight_decay, int maximize,
                              int first_step, int use_momentum, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        T g = maximize ? -grad[i] : grad[i];
        const T p = param[i];
        if (weight_decay != T(0)) g = g + weight_decay * p;
        if (use_momentum) {
            const T buf = first_step ? g : momentum_buf[i] * momentum + one_minus_dampening * g;
            momentum_buf[i] = buf;
            g = nesterov ? g + momentum * buf : buf;
        }
        param[i] = p - lr * g;
    }
}

template <typename T>
__device__ void adam_step_body(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,
                               T* __restrict__ exp_avg_sq, T* __restrict__ max_exp_avg_sq, T one_minus_beta1,
                               T beta2, T one_minus_beta2, T eps, T weight_decay, T decay_factor, T step_size,
                               T bias_correction2_sqrt, int amsgrad, int decoupled_weight_decay, int maximize,
                               int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        T g = maximize ? -grad[i] : grad[i];
        T p = param[i];
        if (weight_decay != T(0)) {
            if (decoupled_weight_decay) p = p * decay_factor;  // AdamW: p *= 1 - lr * wd
            else g = g + weight_decay * p;
        }
        T m = exp_avg[i];
        m = m + one_minus_beta1 * (g - m);
        const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        T second_moment = v;
        if (amsgrad) {
            second_moment = max(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = second_moment;
        }
        const T denom = sqrt(second_moment) / bias_correction2_sqrt + eps;
        param[i] = p - step_size * m / denom;
    }
}

template <typename T>
__device__ void rmsprop_step_body(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ square_avg,
                                  T* __restrict__ grad_avg, T* __restrict__ momentum_buf, T lr, T alpha,
                                  T one_minus_alpha, T eps, T weight_decay, T momentum, int centered,
                                  int use_momentum, int maximize, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        T g = maximize ? -grad[i] : grad[i];
        const T p = param[i];
        if (weight_decay != T(0)) g = g + weight_decay * p;
        const T s = square_avg[i] * alpha + one_minus_alpha * g * g;
        square_avg[i] = s;
        T avg;
        if (centered) {
            const T mean = grad_avg[i] + one_minus_alpha * (g - grad_avg[i]);
            grad_avg[i] = mean;
            avg = sqrt(s - mean * mean) + eps;
        } else {
            avg = sqrt(s) + eps;
        }
        if (use_momentum) {
            const T buf = momentum_buf[i] * momentum + g / avg;
            momentum_buf[i] = buf;
            param[i] = p - lr * buf;
        } else {
            param[i] = p - lr * g / avg;
        }
    }
}

template <typename T>
__device__ void adagrad_step_body(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ state_sum,
                                  T clr, T eps, T weight_decay, int maximize, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        T g = maximize ? -grad[i] : grad[i];
        const T p = param[i];
        if (weight_decay != T(0)) g = g + weight_decay * p;
        const T sum = state_sum[i] + g * g;
        state_sum[i] = sum;
        param[i] = p - clr * g / (sqrt(sum) + eps);
    }
}

template <typename T>
__device__ void adadelta_step_body(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ square_avg,
                                   T* __restrict__ acc_delta, T lr, T rho, T one_minus_rho, T eps, T weight_decay,
                                   int maximize, int n) {
    for (int i = nns_global_index_x(); i < n; i += nns_grid_stride_x()) {
        T g = maximize ? -grad[i] : grad[i];
        const T p = param[i];
        if (weight_decay != T(0)) g = g + weight_decay * p;
        const T s = square_avg[i] * rho + one_minus_rho * g * g;
        square_avg[i] = s;
        const T delta = sqrt(acc_delta[i] + eps) / sqrt(s + eps) * g;
        acc_delta[i] = acc_delta[i] * rho + one_minus_rho * delta * delta;
        param[i] = p - lr * delta;
    }
}

// ---- float32 ------------------------------------------------------------------------------------
extern "C" __global__ void sgd_step_f32(float* param, const float* grad, float* momentum_buf, float lr, float momentum,
                                        float one_minus_dampening, int nesterov, float weight_decay, int maximize,
                                        int first_step, int use_momentum, int n) {
    sgd_step_body(param, grad, momentum_buf, lr, momentum, one_minus_dampening, nesterov, weight_decay, maximize,
                  first_step, use_momentum, n);
}
extern "C" __global__ void adam_step_f32(float* param, const float* grad, float* exp_avg, float* exp_avg_sq,
                                         float* max_exp_avg_sq, float one_minus_beta1, float beta2,
                                         float one_minus_beta2, float eps, float weight_decay, float decay_factor,
                                         float step_size, float bias_correction2_sqrt, int amsgrad,
                                         int decoupled_weight_decay, int maximize, int n) {
    adam_step_body(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, one_minus_beta1, beta2, one_minus_beta2, eps,
                   weight_decay, decay_factor, step_size, bias_correction2_sqrt, amsgrad, decoupled_weight_decay,
                   maximize, n);
}
extern "C" __global__ void rmsprop_step_f32(float* param, const float* grad, float* square_avg, float* grad_avg,
                                            float* momentum_buf, float lr, float alpha, float one_minus_alpha,
                                            float eps, float weight_decay, float momentum, int centered,
                                            int use_momentum, int maximize, int n) {
    rmsprop_step_body(param, grad, square_avg, grad_avg, momentum_buf, lr, alpha, one_minus_alpha, eps, weight_decay,
                      momentum, centered, use_momentum, maximize, n);
}
extern "C" __global__ void adagrad_step_f32(float* param, const float* grad, float* state_sum, float clr, float eps,
                                            float weight_decay, int maximize, int n) {
    adagrad_step_body(param, grad, state_sum, clr, eps, weight_decay, maximize, n);
}
extern "C" __global__ void adadelta_step_f32(float* param, const float* grad, float* square_avg, float* acc_delta,
                                             float lr, float rho, float one_minus_rho, float eps, float weight_decay,
                                             int maximize, int n) {
    adadelta_step_body(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, maximize, n);
}

// ---- float64 ------------------------------------------------------------------------------------
extern "C" __global__ void sgd_step_f64(double* param, const double* grad, double* momentum_buf, double lr,
                                        double momentum, double one_minus_dampening, int nesterov,
                                        double weight_decay, int maximize, int first_step, int use_momentum, int n) {
    sgd_step_body(param, grad, momentum_buf, lr, momentum, one_minus_dampening, nesterov, weight_decay, maximize,
                  first_step, use_momentum, n);
}
extern "C" __global__ void adam_step_f64(double* param, const double* grad, double* exp_avg, double* exp_avg_sq,
                                         double* max_exp_avg_sq, double one_minus_beta1, double beta2,
                                         double one_minus_beta2, double eps, double weight_decay,
                                         double decay_factor, double step_size, double bias_correction2_sqrt,
                                         int amsgrad, int decoupled_weight_decay, int maximize, int n) {
    adam_step_body(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, one_minus_beta1, beta2, one_minus_beta2, eps,
                   weight_decay, decay_factor, step_size, bias_correction2_sqrt, amsgrad, decoupled_weight_decay,
                   maximize, n);
}
extern "C" __global__ void rmsprop_step_f64(double* param, const double* grad, double* square_avg, double* grad_avg,
                                            double* momentum_buf, double lr, double alpha, double one_minus_alpha,
                                            double eps, double weight_decay, double momentum, int centered,
                                            int use_momentum, int maximize, int n) {
    rmsprop_step_body(param, grad, square_avg, grad_avg, momentum_buf, lr, alpha, one_minus_alpha, eps, weight_decay,
                      momentum, centered, use_momentum, maximize, n);
}
extern "C" __global__ void adagrad_step_f64(double* param, const double* grad, double* state_sum, double clr,
                                            double eps, double weight_decay, int maximize, int n) {
    adagrad_step_body(param, grad, state_sum, clr, eps, weight_decay, maximize, n);
}
extern "C" __global__ void adadelta_step_f64(double* param, const double* grad, double* square_avg,
                                             double* acc_delta, double lr, double rho, double one_minus_rho,
                                             double eps, double weight_decay, int maximize, int n) {
    adadelta_step_body(param, grad, square_avg, acc_delta, lr, rho, one_minus_rho, eps, weight_decay, maximize, n);
}
