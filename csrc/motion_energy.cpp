// Torch bindings of the clip motion signals: schemas of fastssl_C::motion_energy and
// fastssl_C::frame_difference_sum and their CPU implementations. motion_energy runs threads over the
// (clip, frame pair) list, each thread taking a contiguous run of pairs so that it reads each of its
// frames once; frame_difference_sum runs threads over (clip, channel, stripe of rows).
//
// The kernels take the clips' strides as they are, as long as the columns are contiguous: only clips
// whose last dimension is strided (e.g. clips[..., ::2]) are copied first.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../kernels/cpu/motion_energy.h"
#include "host_pool.h"

namespace fastssl {
namespace {

// clips: (B, T, C, H, W) uint8 or float32, T >= 2, any strides; returned with unit column stride.
at::Tensor checked_clips(const at::Tensor& clips) {
  TORCH_CHECK(clips.device().is_cpu(), "clips must be a CPU tensor, got one on ", clips.device());
  TORCH_CHECK(clips.dim() == 5, "clips must have shape (B, T, C, H, W), got ", clips.sizes());
  TORCH_CHECK(clips.numel() > 0, "clips is empty (shape ", clips.sizes(), ")");
  TORCH_CHECK(clips.size(1) >= 2, "clips must have T >= 2 frames, got ", clips.size(1));
  TORCH_CHECK(clips.scalar_type() == at::kByte || clips.scalar_type() == at::kFloat,
              "clips must be uint8 or float32, got ", clips.scalar_type());
  return clips.stride(4) == 1 || clips.size(4) == 1 ? clips : clips.contiguous();
}

cpu::ClipLayout clip_layout(const at::Tensor& x) {
  return {x.size(1), x.size(2), x.size(3), x.size(4), x.stride(1), x.stride(2), x.stride(3)};
}

template <typename T>
void motion_energy_loop(const cpu::MotionEnergyPlan& plan, const T* clips, int64_t clip_stride, int64_t B,
                        float* out) {
  const int64_t pairs = plan.layout.frames - 1;
  at::parallel_for(0, B * pairs, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(plan.scratch_size());
    for (int64_t p = begin; p < end;) {  // the run [begin, end) may span several clips
      const int64_t b = p / pairs, first = p % pairs, count = std::min(end - p, pairs - first);
      cpu::motion_energy_pairs(plan, clips + b * clip_stride, first, count, scratch.data(), out + p);
      p += count;
    }
  });
}

// clips: (B, T, C, H, W) uint8 or float32 -> (B, T - 1) float32.
at::Tensor motion_energy_cpu(const at::Tensor& clips, int64_t pool) {
  const at::Tensor in = checked_clips(clips);
  TORCH_CHECK(pool >= 1 && pool <= std::min(in.size(3), in.size(4)), "pool must lie in [1, min(H, W)] = [1, ",
              std::min(in.size(3), in.size(4)), "], got ", pool);
  const int64_t B = in.size(0);
  const bool uint8 = in.scalar_type() == at::kByte;
  const cpu::MotionEnergyPlan plan(clip_layout(in), pool, uint8);
  at::Tensor out = at::empty({B, in.size(1) - 1}, in.options().dtype(at::kFloat));
  if (uint8) {
    motion_energy_loop(plan, in.const_data_ptr<uint8_t>(), in.stride(0), B, out.data_ptr<float>());
  } else {
    motion_energy_loop(plan, in.const_data_ptr<float>(), in.stride(0), B, out.data_ptr<float>());
  }
  return out;
}

template <typename T>
void frame_difference_loop(const cpu::DifferencePlan& plan, const T* clips, int64_t clip_stride, int64_t B,
                           float* out) {
  const cpu::ClipLayout& l = plan.layout;
  const int64_t C = l.channels, plane = l.height * l.width;
  at::parallel_for(0, B * C * plan.stripes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t stripe = task % plan.stripes, bc = task / plan.stripes, b = bc / C, c = bc % C;
      const int64_t y0 = stripe * plan.stripe_rows, rows = std::min(plan.stripe_rows, l.height - y0);
      cpu::frame_difference_stripe(plan, clips + b * clip_stride + c * l.channel_stride, y0, rows,
                                   out + bc * plane + y0 * l.width);
    }
  });
}

// clips: (B, T, C, H, W) uint8 or float32 -> (B, C, H, W) float32.
at::Tensor frame_difference_sum_cpu(const at::Tensor& clips) {
  const at::Tensor in = checked_clips(clips);
  const int64_t B = in.size(0);
  const cpu::DifferencePlan plan(clip_layout(in));
  at::Tensor out = pooled_empty({B, in.size(2), in.size(3), in.size(4)}, in.options().dtype(at::kFloat));
  if (in.scalar_type() == at::kByte) {
    frame_difference_loop(plan, in.const_data_ptr<uint8_t>(), in.stride(0), B, out.data_ptr<float>());
  } else {
    frame_difference_loop(plan, in.const_data_ptr<float>(), in.stride(0), B, out.data_ptr<float>());
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastssl_C, m) {
  m.def("motion_energy(Tensor clips, int pool) -> Tensor");
  m.def("frame_difference_sum(Tensor clips) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastssl_C, CPU, m) {
  m.impl("motion_energy", &motion_energy_cpu);
  m.impl("frame_difference_sum", &frame_difference_sum_cpu);
}

}  // namespace fastssl
