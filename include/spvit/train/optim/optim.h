// Everything of the training optimisation layer: optimisers, LR schedules, gradient clipping, fp16 loss scaling.
#pragma once
#include "spvit/train/optim/grad_clip.h"
#include "spvit/train/optim/loss_scaler.h"
#include "spvit/train/optim/lr_schedule.h"
#include "spvit/train/optim/optimizer.h"
