# shellcheck shell=bash
# Job launchers of the recipe (see local/launch.sh). Choose the backend here or with
# ESPNET_EXT_CMD_BACKEND=slurm in the environment.
#   local  jobs run on this machine, as many at a time as it has cores
#   slurm  each job runs through srun; --gpu N becomes --gres=gpu:N, --num_nodes N a
#          multi-node allocation, one task per node (run.sh --num_nodes: one DDP training over
#          them, ESPnet's --dist_launcher slurm; the experiment dir must be on a shared disk)
cmd_backend=${ESPNET_EXT_CMD_BACKEND:-local}
case "${cmd_backend}" in
    local)
        export train_cmd="launch.sh --backend local"
        export cuda_cmd="launch.sh --backend local"
        export decode_cmd="launch.sh --backend local"
        ;;
    slurm)
        export train_cmd="launch.sh --backend slurm --mem 8G"
        export cuda_cmd="launch.sh --backend slurm --mem 64G --cpus_per_task 8"
        export decode_cmd="launch.sh --backend slurm --mem 8G"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend '${cmd_backend}' (local or slurm)" >&2
        # shellcheck disable=SC2317  # exit when run rather than sourced
        return 1 2>/dev/null || exit 1
        ;;
esac
