#!/usr/bin/env python3
"""Writes schedulers.{json,safetensors} in the golden "schedulers" format (golden README
section 4) for the cases set A lacks: every spacing with Euler, Euler ancestral, DPM++ 2M with
and without Karras sigmas, DDIM; 1-step runs; v-prediction; DPM++'s lower_order_final,
euler_at_final and lambda_min_clipped; DDIM's set_alpha_to_one and clip_sample; Euler's pinned
Karras range. The `golden_schedulers_extra` test runs the golden checker on them.

The reference is diffusers v0.24.0's own scheduler modules, imported unmodified from a diffusers
checkout through a small stand-in for the rest of the package, with set A's environment:
Debian 12's python3-numpy (1.24.2) and python3-torch (1.13.1), one thread.

    git -C diffusers checkout v0.24.0
    python3 make_scheduler_cases.py --diffusers diffusers/src/diffusers --out schedulers_extra
"""
import argparse
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch

SEED = 2024  # inputs; the ancestral step noise uses SEED + 1
SDXL_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "_diffusers_version": "0.19.0.dev0",
    "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
    "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "trained_betas": None, "use_karras_sigmas": False}
MODULES = ["scheduling_utils", "scheduling_euler_discrete", "scheduling_euler_ancestral_discrete",
           "scheduling_dpmsolver_multistep", "scheduling_ddim", "scheduling_ddpm"]

# Stand-ins for the parts of diffusers the scheduler modules import.
UTILS = '''
import logging as _logging
from collections import OrderedDict
class BaseOutput(OrderedDict):
    pass
class PushToHubMixin:
    pass
class logging:
    @staticmethod
    def get_logger(name):
        return _logging.getLogger(name)
def deprecate(*args, **kwargs):
    pass
'''
TORCH_UTILS = '''
import torch
DRAWN = []
def randn_tensor(shape, generator=None, device=None, dtype=None, layout=None):
    t = torch.randn(shape, generator=generator, dtype=dtype)
    DRAWN.append(t.clone())
    return t
'''
CONFIGURATION_UTILS = '''
import functools, inspect
class FrozenDict(dict):
    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(name)
class ConfigMixin:
    config_name = "scheduler_config.json"
    def register_to_config(self, **kwargs):
        d = dict(getattr(self, "_internal_dict", {}))
        d.update(kwargs)
        self._internal_dict = FrozenDict(d)
    @property
    def config(self):
        return self._internal_dict
    @classmethod
    def from_config(cls, config, **kwargs):
        params = inspect.signature(cls.__init__).parameters
        merged = {k: v for k, v in dict(config).items() if k in params}
        merged.update({k: v for k, v in kwargs.items() if k in params})
        return cls(**merged)
def register_to_config(init):
    @functools.wraps(init)
    def inner(self, *args, **kwargs):
        bound = inspect.signature(init).bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.register_to_config(**{k: v for k, v in bound.arguments.items() if k != "self"})
        init(self, *args, **kwargs)
    return inner
'''


def import_diffusers(src):
    root = tempfile.mkdtemp()
    pkg = os.path.join(root, "diffusers")
    os.makedirs(os.path.join(pkg, "schedulers"))
    os.makedirs(os.path.join(pkg, "utils"))
    for path, text in [("__init__.py", ""), ("schedulers/__init__.py", ""), ("utils/__init__.py", UTILS),
                       ("utils/torch_utils.py", TORCH_UTILS), ("configuration_utils.py", CONFIGURATION_UTILS)]:
        with open(os.path.join(pkg, path), "w") as f:
            f.write(text)
    for m in MODULES:
        shutil.copy(os.path.join(src, "schedulers", m + ".py"), os.path.join(pkg, "schedulers"))
    sys.path.insert(0, root)
    import importlib
    return {m: importlib.import_module("diffusers.schedulers." + m) for m in MODULES}, \
        importlib.import_module("diffusers.utils.torch_utils")


def write_safetensors(path, tensors):
    names = sorted(tensors, key=lambda k: (-tensors[k].dtype.itemsize, k))
    header, offset, blobs = {}, 0, []
    for k in names:
        b = np.ascontiguousarray(tensors[k]).tobytes()
        header[k] = {"dtype": {"float32": "F32", "int64": "I64"}[str(tensors[k].dtype)],
                     "shape": list(tensors[k].shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt", "producer": "make_scheduler_cases.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def strict_json(v):
    if isinstance(v, float) and np.isinf(v):
        return "-Infinity" if v < 0 else "Infinity"
    return v


def run_case(mods, torch_utils, name, cls_name, steps, spacing, extra, tensors):
    module = {"EulerDiscreteScheduler": "scheduling_euler_discrete",
              "EulerAncestralDiscreteScheduler": "scheduling_euler_ancestral_discrete",
              "DPMSolverMultistepScheduler": "scheduling_dpmsolver_multistep",
              "DDIMScheduler": "scheduling_ddim"}[cls_name]
    s = getattr(mods[module], cls_name).from_config(SDXL_SCHEDULER_CONFIG, timestep_spacing=spacing, **extra)
    s.set_timesteps(steps)
    offset = torch.from_numpy(tensors["__input__.model_output_offset"])
    latents = torch.from_numpy(tensors["__input__.initial_noise"]) * s.init_noise_sigma
    ancestral = cls_name == "EulerAncestralDiscreteScheduler"
    generator = torch.Generator().manual_seed(SEED + 1) if ancestral else None
    rows = {"latents": [latents], "scaled_model_input": [], "model_output": [], "pred_original_sample": []}
    noises = []
    for t in s.timesteps:
        x_in = s.scale_model_input(latents, t)
        model_output = 0.1 * x_in + offset
        torch_utils.DRAWN.clear()
        if cls_name == "DDIMScheduler":
            out = s.step(model_output, t, latents, eta=0.0)
        elif ancestral:
            out = s.step(model_output, t, latents, generator=generator)
            noises.append(torch_utils.DRAWN[-1])
        else:
            out = s.step(model_output, t, latents)
        latents = out.prev_sample
        rows["latents"].append(latents)
        rows["scaled_model_input"].append(x_in)
        rows["model_output"].append(model_output)
        if cls_name != "DPMSolverMultistepScheduler":
            rows["pred_original_sample"].append(out.pred_original_sample)
    p = "__output__." + name + "."
    tensors[p + "timesteps"] = s.timesteps.numpy()
    if cls_name != "DDIMScheduler":
        tensors[p + "sigmas"] = s.sigmas.numpy().astype(np.float32)
    tensors[p + "init_noise_sigma"] = np.array(float(s.init_noise_sigma), dtype=np.float32)
    for key, values in rows.items():
        if values:
            tensors[p + key] = torch.stack(values).numpy()
    if noises:
        tensors["__input__." + name + ".step_noise"] = torch.stack(noises).numpy()
    config = {"_class_name": cls_name, "_diffusers_version": "0.24.0"}
    config.update({k: strict_json(v) for k, v in s.config.items()})
    return {"class": "diffusers." + cls_name, "num_inference_steps": steps, "timestep_spacing": spacing,
            "config": config, "generator_seed": SEED + 1 if ancestral else None}


def cases():
    E, A, D, I = ("EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
                  "DPMSolverMultistepScheduler", "DDIMScheduler")
    dpm = dict(algorithm_type="dpmsolver++", solver_order=2)
    karras = dict(dpm, use_karras_sigmas=True)
    v = dict(prediction_type="v_prediction")
    which = []
    for sp in ("leading", "trailing", "linspace"):
        which += [("euler_%s_1" % sp, E, 1, sp, {}), ("euler_%s_7" % sp, E, 7, sp, {}),
                  ("euler_karras_%s_9" % sp, E, 9, sp, dict(use_karras_sigmas=True)),
                  ("euler_ancestral_%s_6" % sp, A, 6, sp, {}),
                  ("dpmpp_2m_%s_1" % sp, D, 1, sp, dpm), ("dpmpp_2m_%s_7" % sp, D, 7, sp, dpm),
                  ("ddim_%s_1" % sp, I, 1, sp, {}), ("ddim_%s_7" % sp, I, 7, sp, {})]
    which += [("euler_v_trailing_8", E, 8, "trailing", v),
              ("euler_ancestral_v_leading_5", A, 5, "leading", v),
              ("dpmpp_2m_v_linspace_16", D, 16, "linspace", dict(dpm, **v)),
              ("dpmpp_2m_karras_v_trailing_6", D, 6, "trailing", dict(karras, **v)),
              ("dpmpp_2m_karras_leading_16", D, 16, "leading", karras),
              ("ddim_v_trailing_6", I, 6, "trailing", v),
              ("ddim_alpha_one_leading_5", I, 5, "leading", dict(set_alpha_to_one=True)),
              ("ddim_clip_trailing_4", I, 4, "trailing", dict(clip_sample=True)),
              ("dpmpp_2m_euler_final_leading_16", D, 16, "leading", dict(dpm, euler_at_final=True)),
              ("dpmpp_2m_no_lower_order_final_trailing_6", D, 6, "trailing", dict(dpm, lower_order_final=False)),
              ("dpmpp_2m_clipped_linspace_8", D, 8, "linspace", dict(dpm, lambda_min_clipped=-2.0)),
              ("euler_karras_pinned_leading_6", E, 6, "leading",
               dict(use_karras_sigmas=True, sigma_min=0.05, sigma_max=12.0))]
    return which


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffusers", required=True, help="src/diffusers of a v0.24.0 checkout")
    parser.add_argument("--out", required=True, help="folder for schedulers.{json,safetensors}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mods, torch_utils = import_diffusers(args.diffusers)
    generator = torch.Generator().manual_seed(SEED)
    tensors = {
        "__input__.initial_noise": torch.randn(1, 4, 4, 4, generator=generator).numpy(),
        "__input__.model_output_offset": (0.5 * torch.randn(1, 4, 4, 4, generator=generator)).numpy(),
        "__input__.ddpm.original_samples": torch.randn(4, 4, 2, 2, generator=generator).numpy(),
        "__input__.ddpm.noise": torch.randn(4, 4, 2, 2, generator=generator).numpy(),
        "__input__.ddpm.timesteps": np.array([0, 1, 500, 999], dtype=np.int64),
    }
    specs = {}
    for name, cls_name, steps, spacing, extra in cases():
        specs[name] = run_case(mods, torch_utils, name, cls_name, steps, spacing, extra, tensors)
    ddpm = mods["scheduling_ddpm"].DDPMScheduler.from_config(SDXL_SCHEDULER_CONFIG)
    x0, noise, t = (torch.from_numpy(tensors["__input__.ddpm." + k]) for k in ("original_samples", "noise", "timesteps"))
    tensors["__output__.ddpm.noisy_samples"] = ddpm.add_noise(x0, noise, t).numpy()
    tensors["__output__.ddpm.velocity"] = ddpm.get_velocity(x0, noise, t).numpy()
    tensors["__output__.ddpm.alphas_cumprod"] = ddpm.alphas_cumprod.numpy()
    tensors["__output__.ddpm.betas"] = ddpm.betas.numpy()
    ddpm_config = {"_class_name": "DDPMScheduler", "_diffusers_version": "0.24.0"}
    ddpm_config.update(ddpm.config)
    sidecar = {"name": "schedulers", "golden_set": "sample-extra",
               "versions": {"diffusers": "0.24.0", "torch": torch.__version__, "numpy": np.__version__},
               "sdxl_scheduler_config": SDXL_SCHEDULER_CONFIG, "cases": specs,
               "ddpm": {"class": "diffusers.DDPMScheduler", "config": ddpm_config}}
    os.makedirs(args.out, exist_ok=True)
    write_safetensors(os.path.join(args.out, "schedulers.safetensors"), tensors)
    with open(os.path.join(args.out, "schedulers.json"), "w") as f:
        json.dump(sidecar, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%d cases in %s" % (len(specs), args.out))


if __name__ == "__main__":
    main()
