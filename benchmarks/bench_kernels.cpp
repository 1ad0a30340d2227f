// CUDA kernel bandwidth (kernels/*.cu): each kernel's effective bandwidth next to a device-to-device cudaMemcpyAsync
// moving the same bytes, the unfused LibTorch-op version of the same step, and the LSS forward exchange
// pack + all-gather + unpack fused versus unfused (run with mpirun -np N; the collective is the MPI backend's).
//
// Bytes moved = bytes read + bytes written by the kernel; the copy moves half of that (it reads and writes it), so
// "copy GB/s" is the bandwidth the kernel would reach if it were as efficient as a plain copy. Median of --reps runs
// after warm-up, synchronised with the device. Every kernel's output is checked against the op version once.
//
//   bench_kernels [--tokens 16384] [--dim 768] [--heads 12] [--reps 50] [--out results.json|results.md]
#include "spvit/dist/mpi.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "spvit/build_info.h"
#include "spvit/core/error.h"
#include "spvit/core/logging.h"
#include "spvit/core/timer.h"
#include "spvit/core/torch_compat.h"
#include "spvit/dist/collectives.h"
#include "spvit/dist/mpi_runtime.h"
#include "spvit/dist/process_grid.h"
#include "spvit/kernels/kv_pack.h"
#include "spvit/kernels/multi_tensor.h"
#include "spvit/kernels/patch_resample.h"
#if SPVIT_HAVE_CUDA
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

using namespace spvit;

namespace {

struct Options {
  int64_t tokens = 16384, dim = 768, heads = 12;
  int reps = 50;
  std::string out;
};

struct Row {
  std::string name;
  double bytes = 0;                    // read + written by the kernel
  double kernel_us = 0, copy_us = 0;   // the kernel; cudaMemcpyAsync of bytes / 2
  double unfused_us = 0;               // the LibTorch-op version (0: not measured)
};

void write_results(const std::vector<Row>& rows, const std::string& note, const std::string& path) {
  std::ofstream out(path);
  SPVIT_CHECK(out, "cannot write '", path, "'");
  const bool markdown = path.size() > 3 && path.substr(path.size() - 3) == ".md";
  if (markdown) {
    out << "# bench_kernels\n\n" << note << "\n\n";
    out << "| kernel | MB moved | kernel us | kernel GB/s | copy us | copy GB/s | kernel/copy time | unfused us |\n"
           "|---|---|---|---|---|---|---|---|\n";
    char line[256];
    for (const auto& r : rows) {
      std::snprintf(line, sizeof line, "| %s | %.1f | %.1f | %.0f | %.1f | %.0f | %.2f | %.1f |\n", r.name.c_str(),
                    r.bytes / 1e6, r.kernel_us, r.bytes / (r.kernel_us * 1e3), r.copy_us,
                    r.bytes / (r.copy_us * 1e3), r.kernel_us / r.copy_us, r.unfused_us);
      out << line;
    }
    return;
  }
  out << "{\"note\": \"" << note << "\", \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out << (i ? ", " : "") << "{\"kernel\": \"" << r.name << "\", \"bytes\": " << r.bytes
        << ", \"kernel_us\": " << r.kernel_us << ", \"copy_us\": " << r.copy_us
        << ", \"unfused_us\": " << r.unfused_us << "}";
  }
  out << "]}\n";
}

#if SPVIT_HAVE_CUDA

// Median microseconds of fn over `reps` runs after 3 warm-ups, each synchronised with the device.
double time_us(int reps, const std::function<void()>& fn) {
  for (int i = 0; i < 3; ++i) fn();
  torch::cuda::synchronize();
  std::vector<double> samples;
  for (int i = 0; i < reps; ++i) {
    Stopwatch watch;
    fn();
    torch::cuda::synchronize();
    samples.push_back(watch.seconds() * 1e6);
  }
  std::nth_element(samples.begin(), samples.begin() + reps / 2, samples.end());
  return samples[static_cast<size_t>(reps / 2)];
}

double copy_us(int64_t bytes, int reps) {
  auto src = torch::empty({bytes}, torch::dtype(torch::kByte).device(torch::kCUDA));
  auto dst = torch::empty_like(src);
  return time_us(reps, [&] {
    SPVIT_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice,
                                c10::cuda::getCurrentCUDAStream()) == cudaSuccess, "cudaMemcpyAsync failed");
  });
}

Row measure(const std::string& name, double bytes, int reps, const std::function<void()>& kernel,
            const std::function<void()>& unfused = {}) {
  Row r{name, bytes};
  r.kernel_us = time_us(reps, kernel);
  r.copy_us = copy_us(static_cast<int64_t>(bytes / 2), reps);
  if (unfused) r.unfused_us = time_us(reps, unfused);
  return r;
}

void check_equal(const torch::Tensor& a, const torch::Tensor& b, double tol, const std::string& what) {
  const double diff = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
  SPVIT_CHECK(diff <= tol, what, ": kernel and op versions differ by ", diff);
}

// One ViT block's parameter shapes (dim E): the tensors a gradient bucket holds.
std::vector<torch::Tensor> block_parameters(int64_t E, torch::TensorOptions o) {
  std::vector<torch::Tensor> p;
  for (auto shape : std::vector<std::vector<int64_t>>{{E}, {E}, {3 * E, E}, {3 * E}, {E, E}, {E}, {E}, {E},
                                                     {4 * E, E}, {4 * E}, {E, 4 * E}, {E}}) {
    p.push_back(torch::randn(shape, o));
  }
  return p;
}

// A random quadtree over a `root`² image with about `leaves` leaves, in Z-order (x, y, z, side rows).
torch::Tensor random_tree(int64_t root, int64_t leaves, int64_t min_side) {
  std::mt19937 rng(1);
  std::vector<std::array<int64_t, 3>> open = {{0, 0, root}}, done;
  while (!open.empty() && static_cast<int64_t>(open.size() + done.size()) + 3 <= leaves) {
    const size_t pick = rng() % open.size();
    const auto leaf = open[pick];
    open.erase(open.begin() + static_cast<std::ptrdiff_t>(pick));
    const int64_t h = leaf[2] / 2;
    for (int c = 0; c < 4; ++c) {
      std::array<int64_t, 3> child = {leaf[0] + (c & 1) * h, leaf[1] + (c >> 1) * h, h};
      (h > min_side ? open : done).push_back(child);
    }
  }
  done.insert(done.end(), open.begin(), open.end());
  std::vector<int64_t> x, y, z, side;
  for (const auto& l : done) x.push_back(l[0]), y.push_back(l[1]), z.push_back(0), side.push_back(l[2]);
  return kernels::make_leaves(x, y, z, side);
}

std::vector<Row> run_kernels(const Options& o, const dist::CommPtr& comm) {
  std::vector<Row> rows;
  const auto bf16 = torch::dtype(torch::kBFloat16).device(torch::kCUDA);
  const int64_t L = o.tokens, E = o.dim, H = o.heads, n = comm->size();
  const double el = 2.0;  // bf16 bytes

  // ---- fused K‖V (bf16, B = 1, one rank's L_s = L / n tokens; gathered buffers hold L)
  const int64_t Ls = L / n;
  auto qkv = torch::randn({1, Ls, 3 * E}, bf16);
  auto gathered = torch::randn({Ls * n, 2, 1, E}, bf16);
  auto dk = torch::randn({1, H, Ls * n, E / H}, bf16), dv = torch::randn_like(dk);
  auto dq = torch::randn({1, H, Ls, E / H}, bf16), dkv = torch::randn({Ls, 2, 1, E}, bf16);
  auto dqkv = torch::empty({1, Ls, 3 * E}, bf16);
  const auto views = kernels::split_qkv_for_gather(qkv, H, kernels::KvPath::Views);
  check_equal(kernels::split_qkv(qkv, H).kv, views.kv, 0, "split_qkv");
  rows.push_back(measure("split_qkv (q heads + K||V send buffer)", 2 * el * Ls * 3 * E, o.reps,
                         [&] { kernels::split_qkv(qkv, H); },
                         [&] {
                           auto s = kernels::split_qkv_for_gather(qkv, H, kernels::KvPath::Views);
                           s.q.contiguous();
                         }));
  rows.push_back(measure("unpack_kv (gathered -> K, V [B,H,L,D])", 2 * el * Ls * n * 2 * E, o.reps,
                         [&] { kernels::unpack_kv(gathered, H); },
                         [&] {
                           auto kv = kernels::unpack_gathered_kv(gathered, H, kernels::KvPath::Views);
                           kv.first.contiguous();
                           kv.second.contiguous();
                         }));
  rows.push_back(measure("pack_kv_grad (dK, dV -> reduce-scatter input)", 2 * el * Ls * n * 2 * E, o.reps,
                         [&] { kernels::pack_kv_grad(dk, dv); },
                         [&] { torch::stack({dk, dv}, 0).permute({3, 0, 1, 2, 4}).contiguous(); }));
  rows.push_back(measure("merge_qkv_grad (dq + reduced dK,dV -> dqkv)", 2 * el * Ls * 3 * E, o.reps,
                         [&] { kernels::merge_qkv_grad(dq, dkv, dqkv, false); },
                         [&] {
                           const auto q_rows = dq.transpose(1, 2).reshape({1, Ls, E});
                           torch::cat({q_rows, dkv.permute({2, 0, 1, 3}).reshape({1, Ls, 2 * E})}, 2);
                         }));

  // ---- gradient bucket of one ViT block (float32): flatten with 1/N_d, unflatten
  const auto f32 = torch::dtype(torch::kFloat32).device(torch::kCUDA);
  const auto params = block_parameters(E, f32);
  std::vector<int64_t> offsets;
  int64_t numel = 0;
  for (const auto& p : params) offsets.push_back(numel), numel += p.numel();
  auto flat = torch::empty({numel}, f32);
  std::vector<torch::Tensor> outs;
  for (const auto& p : params) outs.push_back(torch::empty_like(p));
  rows.push_back(measure("flatten_into bucket (12 tensors, x0.5)", 2 * 4.0 * numel, o.reps,
                         [&] { kernels::flatten_into(params, flat, offsets, 0.5); },
                         [&] {
                           for (size_t i = 0; i < params.size(); ++i)
                             flat.narrow(0, offsets[i], params[i].numel()).view_as(params[i]).copy_(params[i] * 0.5);
                         }));
  rows.push_back(measure("unflatten_from bucket (12 tensors)", 2 * 4.0 * numel, o.reps,
                         [&] { kernels::unflatten_from(flat, offsets, outs); },
                         [&] {
                           for (size_t i = 0; i < outs.size(); ++i)
                             outs[i].copy_(flat.narrow(0, offsets[i], outs[i].numel()).view_as(outs[i]));
                         }));

  // ---- adaptive patches: 8192² × 3 uint8 image, ~4096 leaves of sides 64..1024, P = 16
  const int64_t side = 8192, P = 16;
  auto image = torch::randint(0, 256, {side, side, 3}, torch::dtype(torch::kByte).device(torch::kCUDA));
  const auto leaves = random_tree(side, 4096, 64);
  const std::vector<int64_t> zero = {0, 0}, extent = {side, side};
  const int64_t count = leaves.size(0);
  rows.push_back(measure("extract_leaves (8192^2x3 u8 -> " + std::to_string(count) + " bf16 tokens)",
                         side * side * 3.0 + count * 3.0 * P * P * el, o.reps,
                         [&] { kernels::extract_leaves(image, zero, extent, leaves, P, false, torch::kBFloat16); }));
  auto tokens = torch::randn({count, 2 * P * P}, bf16);
  rows.push_back(measure("paste_leaves (" + std::to_string(count) + " bf16 K=2 tiles -> 8192^2 map)",
                         count * 2.0 * P * P * el + side * side * 2.0 * el, o.reps,
                         [&] { kernels::paste_leaves(tokens, leaves, P, zero, extent, extent); }));

  // ---- the LSS forward exchange: pack + all-gather + unpack, fused kernels vs views + .contiguous()
  const std::vector<int64_t> counts(static_cast<size_t>(n), Ls);
  Row exchange{"pack + all-gather + unpack (" + std::to_string(n) + " ranks, MPI)", 2 * el * Ls * 3 * E};
  exchange.kernel_us = time_us(o.reps, [&] {
    auto s = kernels::split_qkv_for_gather(qkv, H, kernels::KvPath::Fused);
    kernels::unpack_gathered_kv(dist::gather_rows(s.kv, comm, counts), H, kernels::KvPath::Fused);
  });
  exchange.unfused_us = time_us(o.reps, [&] {
    auto s = kernels::split_qkv_for_gather(qkv, H, kernels::KvPath::Views);
    auto kv = kernels::unpack_gathered_kv(dist::gather_rows(s.kv, comm, counts), H, kernels::KvPath::Views);
    s.q.contiguous();
    kv.first.contiguous();
    kv.second.contiguous();
  });
  exchange.copy_us = copy_us(static_cast<int64_t>(exchange.bytes / 2), o.reps);
  rows.push_back(exchange);
  return rows;
}

#endif

}  // namespace

int main(int argc, char** argv) {
  dist::MpiRuntime mpi(&argc, &argv);
  log::init(mpi.world_rank(), mpi.world_size(), "warn");
  Options o;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tokens") o.tokens = std::stoll(argv[i + 1]);
    if (a == "--dim") o.dim = std::stoll(argv[i + 1]);
    if (a == "--heads") o.heads = std::stoll(argv[i + 1]);
    if (a == "--reps") o.reps = std::stoi(argv[i + 1]);
    if (a == "--out") o.out = argv[i + 1];
  }
  try {
#if SPVIT_HAVE_CUDA
    SPVIT_CHECK(torch::cuda::is_available(), "bench_kernels: this CUDA build sees no GPU");
    auto grid = dist::ProcessGrid::create({1, mpi.world_size()}, 300);
    const auto rows = run_kernels(o, grid.seq());
    const std::string note = "LibTorch " + compat::torch_version() + ", " + std::to_string(mpi.world_size()) +
                             " rank(s), " + std::to_string(o.tokens) + " tokens, E " + std::to_string(o.dim) +
                             ", bf16 unless noted; median of " + std::to_string(o.reps);
    if (mpi.world_rank() == 0) {
      std::printf("# %s\n| kernel | MB | kernel us | GB/s | copy us | copy GB/s | kernel/copy | unfused us |\n",
                  note.c_str());
      for (const auto& r : rows) {
        std::printf("| %s | %.1f | %.1f | %.0f | %.1f | %.0f | %.2f | %.1f |\n", r.name.c_str(), r.bytes / 1e6,
                    r.kernel_us, r.bytes / (r.kernel_us * 1e3), r.copy_us, r.bytes / (r.copy_us * 1e3),
                    r.kernel_us / r.copy_us, r.unfused_us);
      }
      if (!o.out.empty()) write_results(rows, note, o.out);
    }
#else
    const std::string note = "bench_kernels needs a CUDA build: this one has LibTorch " + compat::torch_version() +
                             " without CUDA, so nothing was measured (nvcc, when installed, compile-checks the kernels: "
                             "target spvit_kernels_nvcc_check)";
    if (mpi.world_rank() == 0) {
      std::printf("%s\n", note.c_str());
      if (!o.out.empty()) write_results({}, note, o.out);
    }
#endif
  } catch (const std::exception& e) {
    log::error("{}", e.what());
    dist::abort_world(3);
  }
  return 0;
}
