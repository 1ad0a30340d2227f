# The training optimisation layer: optimisers (AdamW, LAMB), LR schedules, gradient clipping, fp16 loss scaling.
spvit_add_library(spvit_optim
  SOURCES train/optim/optimizers.cpp train/optim/lr_schedule.cpp train/optim/grad_scaling.cpp
  DEPS spvit_dist)
