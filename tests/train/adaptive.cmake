# Layout tokens + tile decoder in the trainer (adaptive quadtree/octree and uniform layouts), 3D training, the tile
# loss, the patcher-threshold augmentation and the progress line (included from tests/CMakeLists.txt).
if(TARGET spvit_data AND TARGET spvit_optim AND TARGET spvit_patch)
  spvit_add_test_executable(spvit_adaptive_tests train/test_adaptive_trainer_mpi.cpp train/test_tile_loss.cpp)
  spvit_add_mpi_test(adaptive_trainer_np2 NP 2 COMMAND $<TARGET_FILE:spvit_adaptive_tests> --grid 1x2)

  # A short 3D run end to end through the CLI on 2 sequence ranks: octree layouts, tile decoder, evaluation.
  spvit_add_mpi_test(cli_train_adaptive_3d NP 2 COMMAND $<TARGET_FILE:spvit> train
                     -c ${PROJECT_SOURCE_DIR}/configs/unetr-3d-volume.yaml
                     --set grid.seq=2 --set model.decoder=tile --set model.pos_encoding=coords
                     --set data.patcher.kind=adaptive --set data.patcher.length=50 --set data.size=16
                     --set model.patch=4 --set model.dim=16 --set model.depth=1 --set model.heads=2
                     --set data.train_samples=2 --set data.val_samples=2 --set train.batch_size=1
                     --set train.steps=2 --set train.warmup_steps=1 --set train.eval_every=2
                     --set train.out_dir=${CMAKE_CURRENT_BINARY_DIR}/cli_train_adaptive_3d)
  set_tests_properties(cli_train_adaptive_3d PROPERTIES PASS_REGULAR_EXPRESSION "validation mean Dice [0-9.]+")
endif()
